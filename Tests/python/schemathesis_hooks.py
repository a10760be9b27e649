"""Hooks of the schemathesis runs of test_openapi.py (SCHEMATHESIS_HOOKS=schemathesis_hooks).

JSON Schema counts 1.0 as an integer, so schemathesis sends `"est_duration": 3094451.0` as
valid data; the contract takes integers in integer spelling only (CONTEXT-SERVICES.md §3:
numbers are kept exactly as sent, and `1.5`-style spellings are refused with 400), which no
JSON Schema keyword can say. Integral floats in generated bodies are therefore spelled as
integers before they are sent; every other value goes as generated."""

import schemathesis


def _integral(value):
    if isinstance(value, float) and value.is_integer() and -2**63 <= value < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


@schemathesis.hook
def before_call(context, case, kwargs):
    if isinstance(case.body, (dict, list, float)):
        case.body = _integral(case.body)
