"""A fresh copy of function_app.py: FunctionApp.get_functions() answers only once per app."""

from __future__ import annotations

import importlib.util
from typing import Any

from tests.support.processes import ROOT


def fresh_function_app() -> Any:
    spec = importlib.util.spec_from_file_location("function_app_copy", ROOT / "function_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def user_function(name: str) -> Any:
    for function in fresh_function_app().app.get_functions():
        if function.get_function_name() == name:
            return function.get_user_function()
    raise KeyError(name)
