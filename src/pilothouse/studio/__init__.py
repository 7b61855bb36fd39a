"""The Studio: a web UI over the public management API and the OpenAI-compatible API,
served by `pilothouse serve` at `/studio` (see docs/studio.md).

    from pilothouse.studio import install_studio
    install_studio(app)          # app from pilothouse.server.create_app
"""

from pilothouse.studio.assets import STUDIO_PATH, install_studio, studio_files

__all__ = ["STUDIO_PATH", "install_studio", "studio_files"]
