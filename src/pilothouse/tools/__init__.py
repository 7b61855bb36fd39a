"""Tools: Python functions, OpenAPI services, MCP servers and vendor connectors, all
behind one interface and one safe outbound HTTP client."""

from pilothouse.tools.base import Tool
from pilothouse.tools.python import PythonTool, tool
from pilothouse.tools.results import ToolResult
from pilothouse.tools.toolset import Toolset

__all__ = ["PythonTool", "Tool", "ToolResult", "Toolset", "tool"]
