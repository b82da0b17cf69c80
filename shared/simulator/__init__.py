"""An OpenAI / Azure OpenAI compatible upstream simulator (aiohttp), with fault injection."""

from .app import create_app, start_simulator
from .config import SimulatorConfig
from .content import count_tokens

__all__ = ["SimulatorConfig", "count_tokens", "create_app", "start_simulator"]
