from promptflow import tool


@tool
def prepare_examples() -> list:
    return [
        {
            "url": "https://play.google.com/store/apps/details?id=com.spotify.music",
            "text_content": "Spotify is a free music and podcast streaming app.",
            "category": "App",
            "evidence": "Both",
        },
        {
            "url": "https://www.youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw",
            "text_content": "NFL Sunday Ticket is a service offered by Google.",
            "category": "Channel",
            "evidence": "URL",
        },
    ]
