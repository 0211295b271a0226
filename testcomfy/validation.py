"""Prompt validation, a port of ComfyUI 0.33's ``validate_prompt``/``validate_inputs``.

The error dicts, their key order, the ``dependent_outputs`` bookkeeping and the quirks
(``error.details`` only for errors on an output node, upstream nodes without reasons
left out, constants coerced in place) follow the real server, because clients parse them.
Python's own exception messages are reused by calling the same conversions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .catalog import Catalog, input_info, input_names

ValidationResult = tuple[bool, Any, list[str], dict[str, Any]]

# Nodes whose VALIDATE_INPUTS takes over the named input (skipping min/max/combo checks).
CUSTOM_VALIDATED = {"LoadImage": ("image",), "LoadImageMask": ("image",), "LoadImageOutput": ("image",)}


def frame(path: str, line: int, func: str, code: str, marks: str | None = None) -> str:
    """One ``traceback.format_tb`` entry; ``marks`` is "caret" (under the expression after the
    first ``= ``/``await``) or a literal marker line."""
    text = f'  File "{path}", line {line}, in {func}\n    {code}\n'
    if marks == "caret":
        start = code.index("await") if "await" in code else code.index("= ") + 2
        text += "    " + " " * start + "^" * (len(code) - start) + "\n"
    elif marks:
        text += f"    {marks}\n"
    return text


LOOKUP = "o_class_type = prompt[o_id]['class_type']"
LOOKUP_MARKS = "               ~~~~~~^^^^^^"


def inner_traceback(root: str) -> list[str]:
    """The two frames the real server reports for a link to a missing node."""
    call = "r = await validate_inputs(prompt_id, prompt, o_id, validated, visiting)"
    return [
        frame(f"{root}/execution.py", 955, "validate_inputs", call, "caret"),
        frame(f"{root}/execution.py", 933, "validate_inputs", LOOKUP, LOOKUP_MARKS),
    ]


def outer_traceback(root: str) -> list[str]:
    call = "m = await validate_inputs(prompt_id, prompt, o, validated)"
    return [
        frame(f"{root}/execution.py", 1032, "validate_prompt", call, "caret"),
        frame(f"{root}/execution.py", 933, "validate_inputs", LOOKUP, LOOKUP_MARKS),
    ]


def full_type_name(exc: BaseException) -> str:
    klass = type(exc)
    module = klass.__module__
    return klass.__qualname__ if module == "builtins" else f"{module}.{klass.__qualname__}"


def is_link(value: Any) -> bool:
    return isinstance(value, list)


MATCH_TYPE = "COMFY_MATCHTYPE_V3"


def node_input_matches(received: Any, wanted: Any) -> bool:
    """ComfyUI's validate_node_input: equal, wildcard, or overlapping comma lists. A V3 MatchType
    on either end passes (the server leaves it to the frontend), as does a list into a COMBO."""
    if received == wanted:
        return True
    if received == MATCH_TYPE or wanted == MATCH_TYPE:
        return True
    if isinstance(received, list) and wanted == "COMBO":
        return True
    if not isinstance(received, str) or not isinstance(wanted, str):
        return False
    got = {t.strip() for t in received.split(",")}
    want = {t.strip() for t in wanted.split(",")}
    if "*" in got or "*" in want:
        return True
    return len(got & want) > 0


def live_inputs(info: dict[str, Any], inputs: dict[str, Any]) -> list[tuple[str, tuple[Any, str | None, dict]]]:
    """The inputs to validate, with V3 dynamic inputs expanded against the prompt's own (as the
    server's INPUT_TYPES(live_inputs=…) does): an Autogrow ``values`` becomes ``values.a``,
    ``values.b``… (its first ``min`` names required); a DynamicCombo keeps its key and adds the
    inputs of the chosen option as ``format.codec``. Other nodes are unchanged."""
    out: list[tuple[str, tuple[Any, str | None, dict]]] = []
    for x in input_names(info):
        input_type, category, extra = input_info(info, x)
        if input_type == "COMFY_AUTOGROW_V3":
            template = extra.get("template") or {}
            item = next(iter(((template.get("input") or {}).get("required") or {}).values()), None)
            item_type = item[0] if isinstance(item, list) and item else "*"
            item_extra = item[1] if isinstance(item, list) and len(item) > 1 and isinstance(item[1], dict) else {}
            names = list(template.get("names") or [])
            required = {f"{x}.{n}" for n in names[: int(template.get("min") or 0)]}
            present = [k for k in inputs if k.startswith(x + ".")]
            for key in [*sorted(required - set(present)), *present]:
                out.append((key, (item_type, category if key in required else "optional", item_extra)))
            continue
        out.append((x, (input_type, category, extra)))
        if input_type == "COMFY_DYNAMICCOMBO_V3" and x in inputs and not is_link(inputs[x]):
            for option in extra.get("options") or []:
                if isinstance(option, dict) and option.get("key") == inputs[x]:
                    for section in ("required", "optional"):
                        for sub, spec in ((option.get("inputs") or {}).get(section) or {}).items():
                            sub_extra = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                            # A nested choice may be left out: the real server ran SaveVideo with
                            # "format": "auto" and no "format.codec", which that option lists as
                            # required (../shared/comfy/transcripts/media_outputs.json).
                            nested_choice = spec[0] == "COMFY_DYNAMICCOMBO_V3"
                            out.append((f"{x}.{sub}", (spec[0], "optional" if nested_choice else section, sub_extra)))
    return out


class _InnerError(Exception):
    """Wraps an exception raised while validating an upstream node, with the frames to report."""

    def __init__(self, exc: BaseException):
        super().__init__(str(exc))
        self.exc = exc


class Validator:
    """Validates API-format prompts against a catalogue; ``file_exists`` checks LoadImage names."""

    def __init__(self, catalog: Catalog, file_exists: Callable[[str], bool], comfy_root: str):
        self.catalog = catalog
        self.file_exists = file_exists
        self.root = comfy_root

    def validate_prompt(self, prompt: dict[str, Any], partial_targets: list[str] | None = None) -> ValidationResult:
        """Returns ``(ok, error, good_outputs, node_errors)``; raises on malformed nodes (→ 500)."""
        outputs: list[str] = []
        for x in prompt:
            node = prompt[x]
            if "class_type" not in node:
                title = node.get("_meta", {}).get("title")
                return (
                    False,
                    {
                        "type": "missing_node_type",
                        "message": f"Node '{title or f'ID #{x}'}' has no class_type. The workflow may be corrupted or a custom node is missing.",
                        "details": f"Node ID '#{x}'",
                        "extra_info": {"node_id": x, "class_type": None, "node_title": title},
                    },
                    [],
                    {},
                )
            class_type = node["class_type"]
            if not self.catalog.has(class_type):
                title = node.get("_meta", {}).get("title", class_type)
                return (
                    False,
                    {
                        "type": "missing_node_type",
                        "message": f"Node '{title}' not found. The custom node may not be installed.",
                        "details": f"Node ID '#{x}'",
                        "extra_info": {"node_id": x, "class_type": class_type, "node_title": title},
                    },
                    [],
                    {},
                )
            if self.catalog.is_output_node(class_type):
                if partial_targets is None or x in partial_targets:
                    outputs.append(x)
        if not outputs:
            return (
                False,
                {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}},
                [],
                {},
            )

        good: list[str] = []
        errors: list[tuple[str, list[dict[str, Any]]]] = []
        node_errors: dict[str, Any] = {}
        validated: dict[str, tuple[bool, list[dict[str, Any]], str]] = {}
        for o in outputs:
            try:
                valid, reasons, _ = self.validate_inputs(prompt, o, validated)
            except _InnerError as wrapped:  # raised by the output node itself
                ex = wrapped.exc
                reasons = [
                    {
                        "type": "exception_during_validation",
                        "message": "Exception when validating node",
                        "details": str(ex),
                        "extra_info": {"exception_type": full_type_name(ex), "traceback": outer_traceback(self.root)},
                    }
                ]
                valid = False
                validated[o] = (False, reasons, o)
            if valid is True:
                good.append(o)
                continue
            errors.append((o, reasons))
            for node_id, (ok, node_reasons, _) in validated.items():
                if ok is not True and len(node_reasons) > 0:
                    if node_id not in node_errors:
                        node_errors[node_id] = {
                            "errors": node_reasons,
                            "dependent_outputs": [],
                            "class_type": prompt[node_id]["class_type"],
                        }
                    node_errors[node_id]["dependent_outputs"].append(o)
        if not good:
            details = "\n".join(f"{e['message']}: {e['details']}" for _, errs in errors for e in errs)
            return (
                False,
                {
                    "type": "prompt_outputs_failed_validation",
                    "message": "Prompt outputs failed validation",
                    "details": details,
                    "extra_info": {},
                },
                [],
                node_errors,
            )
        return True, None, good, node_errors

    def validate_inputs(
        self, prompt: dict[str, Any], unique_id: str, validated: dict, visiting: list[str] | None = None
    ):
        """Validate one node and (recursively) its ancestors; results are memoised in ``validated``."""
        visiting = visiting if visiting is not None else []
        if unique_id in validated:
            return validated[unique_id]
        if unique_id in visiting:
            return self._cycle(prompt, unique_id, validated, visiting)
        try:
            node = prompt[unique_id]
            class_type = node["class_type"]
            inputs = node["inputs"]
        except Exception as ex:  # a link to a node that does not exist
            raise _InnerError(ex) from ex
        info = self.catalog.info(class_type)
        custom = CUSTOM_VALIDATED.get(class_type, ())
        errors: list[dict[str, Any]] = []
        valid = True
        visiting = visiting + [unique_id]
        for x, (input_type, category, extra) in live_inputs(info, inputs):
            config = [input_type, extra]
            if x not in inputs:
                if category == "required":
                    errors.append(
                        {
                            "type": "required_input_missing",
                            "message": "Required input is missing",
                            "details": f"{x}",
                            "extra_info": {"input_name": x},
                        }
                    )
                continue
            val = inputs[x]
            if is_link(val):
                if len(val) != 2:
                    errors.append(
                        {
                            "type": "bad_linked_input",
                            "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                            "details": f"{x}",
                            "extra_info": {"input_name": x, "input_config": config, "received_value": val},
                        }
                    )
                    continue
                o_id = val[0]
                try:
                    o_class = prompt[o_id]["class_type"]
                    received = self.catalog.output_types(o_class)[val[1]]
                except Exception as ex:
                    raise _InnerError(ex) from ex
                if not node_input_matches(received, input_type):
                    errors.append(
                        {
                            "type": "return_type_mismatch",
                            "message": "Return type mismatch between linked nodes",
                            "details": f"{x}, received_type({received}) mismatch input_type({input_type})",
                            "extra_info": {
                                "input_name": x,
                                "input_config": config,
                                "received_type": received,
                                "linked_node": val,
                            },
                        }
                    )
                    continue
                try:
                    r = self.validate_inputs(prompt, o_id, validated, visiting)
                    if r[0] is False:
                        valid = False
                        continue
                except _InnerError as wrapped:
                    ex = wrapped.exc
                    valid = False
                    validated[o_id] = (
                        False,
                        [
                            {
                                "type": "exception_during_inner_validation",
                                "message": "Exception when validating inner node",
                                "details": str(ex),
                                "extra_info": {
                                    "input_name": x,
                                    "input_config": config,
                                    "exception_message": str(ex),
                                    "exception_type": full_type_name(ex),
                                    "traceback": inner_traceback(self.root),
                                    "linked_node": val,
                                },
                            }
                        ],
                        o_id,
                    )
                    continue
                continue
            err = self._check_constant(inputs, x, val, input_type, extra, config, custom)
            if err is not None:
                errors.append(err)
        for x in custom:
            if x in inputs and not is_link(inputs[x]) and not self.file_exists(str(inputs[x])):
                errors.append(
                    {
                        "type": "custom_validation_failed",
                        "message": "Custom validation failed for node",
                        "details": f"{x} - Invalid image file: {inputs[x]}",
                        "extra_info": {"input_name": x},
                    }
                )
        if unique_id in validated:  # marked while we recursed (a dependency cycle): keep that
            return validated[unique_id]
        ret = (False, errors, unique_id) if errors or valid is not True else (True, [], unique_id)
        validated[unique_id] = ret
        return ret

    def _check_constant(
        self,
        inputs: dict[str, Any],
        x: str,
        val: Any,
        input_type: Any,
        extra: dict[str, Any],
        config: list[Any],
        custom: tuple[str, ...],
    ) -> dict[str, Any] | None:
        try:
            if isinstance(val, dict) and "__value__" in val:
                val = val["__value__"]
                inputs[x] = val
            if input_type == "INT":
                val = int(val)
                inputs[x] = val
            if input_type == "FLOAT":
                val = float(val)
                inputs[x] = val
            if input_type == "STRING":
                val = str(val)
                inputs[x] = val
            if input_type == "BOOLEAN":
                val = bool(val)
                inputs[x] = val
        except Exception as ex:
            return {
                "type": "invalid_input_type",
                "message": f"Failed to convert an input value to a {input_type} value",
                "details": f"{x}, {val}, {ex}",
                "extra_info": {
                    "input_name": x,
                    "input_config": config,
                    "received_value": val,
                    "exception_message": str(ex),
                },
            }
        if x in custom:
            return None
        if "min" in extra and val < extra["min"]:
            return {
                "type": "value_smaller_than_min",
                "message": "Value {} smaller than min of {}".format(val, extra["min"]),
                "details": f"{x}",
                "extra_info": {"input_name": x, "input_config": config, "received_value": val},
            }
        if "max" in extra and val > extra["max"]:
            return {
                "type": "value_bigger_than_max",
                "message": "Value {} bigger than max of {}".format(val, extra["max"]),
                "details": f"{x}",
                "extra_info": {"input_name": x, "input_config": config, "received_value": val},
            }
        if isinstance(input_type, list) or input_type == "COMBO":
            options = extra.get("options", []) if input_type == "COMBO" else input_type
            if extra.get("multiselect", False) and isinstance(val, list):
                invalid = [v for v in val if v not in options]
            else:
                invalid = [val] if val not in options else []
            if invalid:
                shown_config: list[Any] | None = config
                if len(options) > 20:
                    list_info = f"(list of length {len(options)})"
                    shown_config = None
                else:
                    list_info = str(options)
                return {
                    "type": "value_not_in_list",
                    "message": "Value not in list",
                    "details": f"{x}: '{val}' not in {list_info}",
                    "extra_info": {"input_name": x, "input_config": shown_config, "received_value": val},
                }
        return None

    def _cycle(self, prompt: dict[str, Any], unique_id: str, validated: dict, visiting: list[str]):
        """Mark every node of a dependency cycle (0.33 reports one entry per node)."""
        path = visiting[visiting.index(unique_id) :] + [unique_id]
        cycle_nodes = list(dict.fromkeys(path))
        details = " -> ".join(f"{n} ({prompt[n]['class_type']})" for n in path)
        for n in cycle_nodes:
            validated[n] = (
                False,
                [
                    {
                        "type": "dependency_cycle",
                        "message": "Dependency cycle detected",
                        "details": details,
                        "extra_info": {"node_id": n, "cycle_nodes": cycle_nodes},
                    }
                ],
                n,
            )
        return validated[unique_id]
