from promptflow import tool

# Offline stand-in for the page fetch of the public example: the pages it knows.
PAGES = {
    "https://www.microsoft.com/en-us/d/xbox-wireless-controller-stellar-shift-special-edition/94fbjc7h0h6h": "Xbox Wireless Controller - Stellar Shift Special Edition. Play like never before. "
    "Textured grip, hybrid D-pad, button mapping and Bluetooth for Windows and Android. "
    "Buy now for $64.99 with free shipping." * 3,
    "https://play.google.com/store/apps/details?id=com.spotify.music": "Spotify: music.",
}


@tool
def fetch_text_content_from_url(url: str) -> str:
    return PAGES.get(url, "No content available")
