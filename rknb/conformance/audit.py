"""The audit conformance runner: rknb's rule verdicts against the peers' stated verdicts.

A case is one verdict a peer linter states for one object (``stated`` in
``expected.json``) or one Checkov result for one object (``checkov``), for the
Checkov checks whose concern rknb covers. rknb's rules declare the peer checks
they are equivalent to (:attr:`rknb.audit.Rule.equivalent`); a peer check
several rules share is failed by rknb when any of them fails the object. A
case where rknb differs from a peer is ``divergent`` only when the rule lists
that peer check as divergent and explains its side in its rationale;
otherwise it fails, as does a peer check no rule declares.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rknb.audit import AuditConfig, AuditReport, Rule, audit, get_rules
from rknb.audit.model import object_key_of, object_namespace
from rknb.conformance import CaseResult, Status, Summary
from rknb.errors import ParameterError
from rknb.sources.base import SUPPORTED_KINDS
from rknb.sources.manifests import MANIFEST_SUFFIXES, SOURCE_ANNOTATION, SkippedDocument
from rknb.sources.objects import is_cluster_scoped, strip_secret

__all__ = [
    "AUDIT_KINDS",
    "CHECKOV_IN_SCOPE",
    "AuditInputs",
    "InputError",
    "peer_map",
    "read_inputs",
    "run",
]

#: Checkov checks whose concern is in sections 1 and 2 of the shared RULES.md (the rest are
#: control-plane flags, PodSecurityPolicy and RBAC checks rknb does not cover).
CHECKOV_IN_SCOPE = frozenset(
    [f"CKV_K8S_{n}" for n in (*range(8, 24), 25, 26, 27, 28, 29, 30, 31, 33, 34, 35)]
    + [f"CKV_K8S_{n}" for n in (37, 38, 39, 40, 41, 43)]
    + ["CKV2_K8S_6"]
)

_TOOLS = {"kube-score", "polaris", "kube-linter", "checkov", "kubesec"}


def peer_map(rules: Iterable[Rule]) -> dict[str, list[tuple[Rule, bool]]]:
    """Return ``tool:check`` -> [(rule, equivalent?)] from the rules' declarations."""
    found: dict[str, list[tuple[Rule, bool]]] = {}
    for r in rules:
        for peer in r.equivalent:
            found.setdefault(peer, []).append((r, True))
        for peer in r.divergent:
            found.setdefault(peer, []).append((r, False))
    return found


def _verdict(
    report: AuditReport, mapped: Sequence[tuple[Rule, bool]], obj: Mapping[str, Any]
) -> tuple[str, bool]:
    # Returns (rknb verdict "pass"/"fail", whether the difference may be divergent).
    kind = str(obj.get("kind"))
    key = object_key_of(kind, object_namespace(obj), str((obj.get("metadata") or {}).get("name")))
    applicable = [(r, eq) for r, eq in mapped if kind in r.kinds]
    equivalent = [r for r, eq in applicable if eq]
    chosen = equivalent or [r for r, eq in applicable if not eq]
    passed = all(report.verdicts.get((r.id, key), True) for r in chosen)
    may_diverge = any(not eq for _, eq in applicable)
    return ("pass" if passed else "fail"), may_diverge


def _find(objects: Sequence[Mapping[str, Any]], ref: str) -> list[Mapping[str, Any]]:
    parts = ref.split("/")
    kind, name = parts[0], parts[-1]
    namespace = parts[1] if len(parts) == 3 else None
    return [
        o
        for o in objects
        if o.get("kind") == kind
        and (o.get("metadata") or {}).get("name") == name
        and (namespace is None or object_namespace(o) == namespace)
    ]


def _checkov_object(objects: Sequence[Mapping[str, Any]], resource: str) -> list[Mapping[str, Any]]:
    kind, _, rest = resource.partition(".")
    namespace, _, name = rest.partition(".")
    exact = _find(objects, f"{kind}/{namespace}/{name}")
    if exact or kind != "Pod":
        return exact
    # Checkov derives a Pod named "<workload>.<labels>" from each pod template for its graph
    # checks; its verdict belongs to that workload.
    return [
        o
        for o in objects
        if object_namespace(o) == namespace
        and o.get("kind") != "Pod"
        and name.startswith(str((o.get("metadata") or {}).get("name")) + ".")
    ][:1]


def _case(
    case_id: str,
    expected: str,
    mapped: Sequence[tuple[Rule, bool]],
    targets: Sequence[Mapping[str, Any]],
    report: AuditReport,
    skipped: Mapping[str, str],
    ref: str,
    whole_file: bool = False,
) -> CaseResult:
    if not mapped:
        return CaseResult(case_id, "failed", expected, None, "no rknb rule declares this check")
    if not targets:
        if expected == "pass" and whole_file:
            # A stated verdict for a whole file whose objects no equivalent rule checks:
            # the peer skips them as well (kube-score's pod-probes on a CronJob).
            return CaseResult(case_id, "passed", expected, "not applicable")
        reason = skipped.get(ref.split("/")[0])
        if reason:
            return CaseResult(case_id, "skipped", expected, None, reason)
        return CaseResult(case_id, "failed", expected, None, f"object {ref} not found")
    status: Status = "passed"
    actual = expected
    for obj in targets:
        verdict, may_diverge = _verdict(report, mapped, obj)
        if verdict != expected:
            actual = verdict
            status = "divergent" if may_diverge and status != "failed" else "failed"
    rules = ", ".join(sorted({r.id for r, _ in mapped}))
    return CaseResult(case_id, status, expected, actual, f"rknb {rules}")


def _manifest_cases(folder: Path, name: str, entry: Mapping[str, Any]) -> list[CaseResult]:
    inputs = read_inputs([folder / "fixtures" / name])
    if inputs.errors:
        return [CaseResult(name, "failed", "readable", inputs.errors[0].text())]
    objects = inputs.objects
    skipped = {
        str(d.kind): f"rknb does not read kind {d.kind} ({d.reason})"
        for d in inputs.skipped
        if d.kind
    }
    report = audit(objects, config=AuditConfig(enabled=("*",)))
    peers = peer_map(get_rules())
    results = []

    for stated in entry.get("stated") or []:
        tool, check = stated["tool"], stated["check"]
        mapped = peers.get(f"{tool}:{check}", [])
        ref = stated.get("object")
        if ref:
            targets = _find(objects, ref)
        else:
            kinds = {k for r, _ in mapped for k in r.kinds}
            targets = [o for o in objects if o.get("kind") in kinds]
            ref = "/".join(sorted(kinds)) or "?"
        case_id = f"{name}:{tool}:{check}:{stated.get('object') or 'all'}"
        results.append(
            _case(
                case_id,
                stated["result"],
                mapped,
                targets,
                report,
                skipped,
                ref,
                not stated.get("object"),
            )
        )

    checkov = (entry.get("checkov") or {}).get("by_resource") or {}
    for resource, outcome in sorted(checkov.items()):
        for expected, ids in (
            ("fail", outcome.get("failed") or []),
            ("pass", outcome.get("passed") or []),
        ):
            for check in ids:
                if check not in CHECKOV_IN_SCOPE:
                    continue
                mapped = peers.get(f"checkov:{check}", [])
                targets = _checkov_object(objects, resource)
                ref = resource.split(".")[0]
                case_id = f"{name}:checkov:{check}:{resource}"
                results.append(_case(case_id, expected, mapped, targets, report, skipped, ref))
    return results


def run(paths: Sequence[Path], **options: Any) -> Summary:
    """Return the summary of the audit fixture folders (``expected.json`` plus ``fixtures/``)."""
    if options:
        raise ParameterError("options", f"the audit runner takes no options, got {sorted(options)}")
    summary = Summary("audit", always_show=("divergent",))
    for folder in paths:
        folder = Path(folder)
        if folder.is_file():
            folder = folder.parent
        expected_path = folder / "expected.json"
        try:
            expected = json.loads(expected_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ParameterError(
                "paths", f"{expected_path} cannot be read as the audit expectations ({error})"
            ) from error
        for name, entry in sorted((expected.get("manifests") or {}).items()):
            summary.results.extend(_manifest_cases(folder, name, entry))
    return summary


# --------------------------------------------------------------------------- reading inputs
#
# `rknb audit` and this runner read manifests here rather than through ManifestSource: one
# bad file must become one error entry while the rest of the run completes, a YAML alias
# bomb must be refused before anything walks it, and 10,000 objects must read in well under
# a second (libyaml's loader when PyYAML has it).

#: Kinds the audit reads: what rknb's sources read, plus OpenShift's DeploymentConfig.
AUDIT_KINDS = frozenset((*SUPPORTED_KINDS, "DeploymentConfig"))
#: Files larger than this are reported as an error instead of read (bytes).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: A document whose aliases expand to more nodes than this is refused as an alias bomb.
MAX_EXPANDED_NODES = 2_000_000

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class InputError:
    """A file (or document) that could not be read: where, and what is wrong with it."""

    path: str
    line: int | None
    column: int | None
    message: str

    def text(self) -> str:
        """Return ``path:line:column: message`` (line and column when known)."""
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


@dataclass
class AuditInputs:
    """What :func:`read_inputs` found: objects to audit, skipped documents, unreadable files."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[SkippedDocument] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    files: int = 0


def _expand(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[str], list[InputError]]:
    files: list[str] = []
    errors: list[InputError] = []
    for given in paths:
        name = os.fspath(given)
        path = Path(name)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES
            )
            files.extend(str(p) for p in found)
        elif path.is_file():
            files.append(name)
        else:
            errors.append(InputError(name, None, None, "no such file or folder; check the path"))
    return files, errors


def _expanded_size(node: yaml.Node, limit: int) -> int:
    # The node count after alias expansion, computed once per distinct node (iteratively).
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        current, done = stack.pop()
        if id(current) in sizes:
            continue
        if isinstance(current, yaml.ScalarNode):
            sizes[id(current)] = 1
            continue
        children: list[yaml.Node] = (
            [n for pair in current.value for n in pair]
            if isinstance(current, yaml.MappingNode)
            else list(current.value)
        )
        if done:
            total = 1 + sum(sizes.get(id(c), 1) for c in children)
            sizes[id(current)] = total
            if total > limit:
                return total
            continue
        stack.append((current, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(node)]


def _item_lines(node: yaml.Node) -> list[int]:
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        items = isinstance(key, yaml.ScalarNode) and key.value == "items"
        if items and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


class _AliasBombError(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _yaml_documents(text: str, path: str) -> list[tuple[Any, int, list[int]]]:
    loader = _LOADER(text)
    # Only a stream with an anchor can hold aliases; the expansion count is skipped otherwise.
    aliases = "&" in text and "*" in text
    documents: list[tuple[Any, int, list[int]]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1
            if aliases and _expanded_size(node, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES:
                raise _AliasBombError(line)
            documents.append((loader.construct_document(node), line, _item_lines(node)))
    finally:
        loader.dispose()
    return documents


def _read_file(path: str, inputs: AuditInputs, default_namespace: str) -> None:
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            inputs.errors.append(
                InputError(
                    path,
                    None,
                    None,
                    f"file is {size / 1e6:.0f} MB, over the {MAX_FILE_BYTES / 1e6:.0f} MB limit; "
                    "split it",
                )
            )
            return
        data = Path(path).read_bytes()
    except OSError as error:
        inputs.errors.append(InputError(path, None, None, f"cannot read the file ({error})"))
        return
    if b"\x00" in data[:8192]:
        inputs.errors.append(InputError(path, None, None, "binary file, not a manifest; skip it"))
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        inputs.errors.append(
            InputError(path, None, None, f"not UTF-8 text (byte {error.start}); fix the encoding")
        )
        return

    documents: list[tuple[Any, int, list[int]]]
    try:
        if path.lower().endswith(".json"):
            documents = [(json.loads(text), 1, [])] if text.strip() else []
        else:
            documents = _yaml_documents(text, path)
    except json.JSONDecodeError as error:
        inputs.errors.append(
            InputError(path, error.lineno, error.colno, f"invalid JSON: {error.msg}")
        )
        return
    except yaml.MarkedYAMLError as error:
        if "{{" in text:
            inputs.skipped.append(
                SkippedDocument(path, 1, None, None, "unrendered Helm template; render it first")
            )
            return
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "invalid YAML"
        inputs.errors.append(
            InputError(
                path,
                mark.line + 1 if mark else None,
                mark.column + 1 if mark else None,
                f"YAML syntax error: {problem}",
            )
        )
        return
    except yaml.YAMLError as error:
        inputs.errors.append(InputError(path, None, None, f"YAML could not be read: {error}"))
        return
    except _AliasBombError as error:
        inputs.errors.append(
            InputError(
                path,
                error.line,
                None,
                f"YAML aliases expand to more than {MAX_EXPANDED_NODES:,} nodes (an alias bomb?); "
                "remove the aliases or split the document",
            )
        )
        return
    except RecursionError:
        inputs.errors.append(InputError(path, None, None, "document nests too deeply to read"))
        return
    for document, line, item_lines in documents:
        _add_document(document, path, line, item_lines, inputs, default_namespace)


def _add_document(
    document: Any,
    path: str,
    line: int,
    item_lines: list[int],
    inputs: AuditInputs,
    default_namespace: str,
) -> None:
    if document is None:
        return
    if not isinstance(document, dict):
        inputs.errors.append(
            InputError(path, line, None, f"expected an object, found a {type(document).__name__}")
        )
        return
    kind = document.get("kind")
    given = document.get("metadata")
    metadata: dict[str, Any] = given if isinstance(given, dict) else {}
    name = metadata.get("name")
    if kind is None and isinstance(document.get("groups"), list):
        # A Prometheus rules file becomes the PrometheusRule the operator would hold.
        document = {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": Path(path).stem, "namespace": default_namespace},
            "spec": {"groups": document["groups"]},
        }
        kind, metadata, name = "PrometheusRule", document["metadata"], Path(path).stem
    if isinstance(kind, str) and kind.endswith("List") and isinstance(document.get("items"), list):
        item_kind = kind[: -len("List")] if kind != "List" else None
        for number, item in enumerate(document["items"]):
            if isinstance(item, dict) and item_kind and "kind" not in item:
                item = {"apiVersion": document.get("apiVersion"), "kind": item_kind, **item}
            where = item_lines[number] if number < len(item_lines) else line
            _add_document(item, path, where, [], inputs, default_namespace)
        return
    if not isinstance(kind, str) or not kind:
        inputs.skipped.append(SkippedDocument(path, line, None, name, "no kind: not an object"))
        return
    if kind not in AUDIT_KINDS:
        inputs.skipped.append(
            SkippedDocument(
                path,
                line,
                kind,
                name,
                f"kind {kind} is a custom resource or a kind rknb does not audit",
            )
        )
        return
    metadata = dict(metadata)
    if not is_cluster_scoped(kind) and not metadata.get("namespace"):
        metadata["namespace"] = default_namespace
    annotations = dict(metadata.get("annotations") or {})
    annotations[SOURCE_ANNOTATION] = f"{path}:{line}"
    metadata["annotations"] = annotations
    inputs.objects.append(strip_secret({**document, "metadata": metadata}))


def read_inputs(
    paths: Iterable[str | os.PathLike[str]], *, default_namespace: str = "default"
) -> AuditInputs:
    """Return the objects of manifest files and folders, with what was skipped or unreadable.

    Files and folders (recursively: ``.yaml``, ``.yml``, ``.json``), multi-document YAML,
    JSON, Lists, ``kustomize build`` output and Prometheus rule files. Each unreadable file
    (binary, invalid YAML or JSON, too large, an alias bomb) is one :class:`InputError`
    with its line and column where known; the other files are still read.
    """
    inputs = AuditInputs()
    files, inputs.errors = _expand(paths)
    inputs.files = len(files)
    for path in files:
        _read_file(path, inputs, default_namespace)
    return inputs


# --------------------------------------------------------------------------- schema validation

_VALIDATORS: dict[tuple[str, str, str], Any] = {}


def _validator(version: str, kind: str, api_version: str) -> Any:
    key = (version, kind, api_version)
    if key not in _VALIDATORS:
        import jsonschema
        from kubernetes_validate import utils
        from referencing import Registry, Resource

        group = api_version.split("/")[0].split(".")[0] if "/" in api_version else ""
        short = f"{group}-{api_version.split('/')[-1]}" if group else api_version
        folder = f"kubernetes-json-schema/v{version}-local"
        try:
            schema = utils.schema_contents(f"{folder}/{kind.lower()}-{short}.json", version)
        except FileNotFoundError:
            _VALIDATORS[key] = None
            return None
        definitions = utils.schema_contents(f"{folder}/_definitions.json", version)
        registry = Resource.from_contents(definitions) @ (
            Resource.from_contents(schema) @ Registry()
        )
        _VALIDATORS[key] = jsonschema.validators.Draft202012Validator(schema, registry=registry)
    return _VALIDATORS[key]


def schema_version(kube_version: str) -> str:
    """Return the schema version kubernetes-validate holds for a Kubernetes version (1.30)."""
    from kubernetes_validate import utils

    wanted = utils.major_minor(kube_version.removeprefix("v"))
    held = [v for v in utils.all_versions() if utils.major_minor(v) <= wanted]
    if not held:
        raise ParameterError(
            "kube_version", f"{kube_version!r} is older than every schema kubernetes-validate holds"
        )
    return held[-1]


def validate_objects(objects: Sequence[Mapping[str, Any]], kube_version: str) -> list[InputError]:
    """Return one error per object the Kubernetes OpenAPI schema of ``kube_version`` rejects.

    Objects of kinds the schema set does not hold (custom resources such as
    PrometheusRule, OpenShift kinds) are not checked. The ``rknb.io/source``
    annotation rknb adds is not part of the check's verdict (annotations are free-form).
    """
    version = schema_version(kube_version)
    errors = []
    for obj in objects:
        validator = _validator(version, str(obj.get("kind")), str(obj.get("apiVersion")))
        if validator is None:
            continue
        error = next(iter(validator.iter_errors(obj)), None)
        if error is None:
            continue
        meta = obj.get("metadata") or {}
        source = str((meta.get("annotations") or {}).get(SOURCE_ANNOTATION, "?"))
        path, _, line = source.rpartition(":")
        field_path = ".".join(str(p) for p in error.absolute_path) or "(object)"
        errors.append(
            InputError(
                path or source,
                int(line) if line.isdigit() else None,
                None,
                f"{obj.get('kind')} {meta.get('name')!r} is invalid for Kubernetes {version} at "
                f"{field_path}: {error.message[:200]}",
            )
        )
    return errors


# --------------------------------------------------------------------------- the audit command

#: Output formats of ``rknb audit``.
FORMATS = ("text", "json", "sarif", "junit")
#: The default ``--fail-on``: CI fails on high and critical findings.
DEFAULT_FAIL_ON = "high"


def load_config(path: str | os.PathLike[str] | None) -> AuditConfig:
    """Return the audit settings of a YAML config file (``min_replicas``, ``disabled``, ...)."""
    if path is None:
        return AuditConfig()
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ParameterError("--config", f"{os.fspath(path)!r} cannot be read ({error})") from error
    known = {"min_replicas", "disabled", "ignore", "enabled"}
    if not isinstance(data, dict) or set(data) - known:
        raise ParameterError(
            "--config",
            f"{os.fspath(path)!r} must be a mapping of {', '.join(sorted(known))}",
        )
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return AuditConfig(**values)


def _with_errors_json(document: str, errors: Sequence[InputError]) -> str:
    data = json.loads(document)
    data["errors"] = [
        {"path": e.path, "line": e.line, "column": e.column, "message": e.message} for e in errors
    ]
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _notifications(errors: Sequence[InputError]) -> list[dict[str, Any]]:
    notifications = []
    for e in errors:
        note: dict[str, Any] = {"level": "error", "message": {"text": e.message}}
        region: dict[str, Any] = {}
        if e.line:
            region["startLine"] = e.line
        if e.column:
            region["startColumn"] = e.column
        physical: dict[str, Any] = {"artifactLocation": {"uri": e.path}}
        if region:
            physical["region"] = region
        note["locations"] = [{"physicalLocation": physical}]
        notifications.append(note)
    return notifications


def _with_errors_junit(document: str, errors: Sequence[InputError]) -> str:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(document.split("?>", 1)[1])
    suite = root.find("testsuite")
    assert suite is not None
    for e in errors:
        case = ET.SubElement(suite, "testcase", classname=e.path, name="read")
        ET.SubElement(case, "error", message=e.text())
    suite.set("tests", str(len(suite)))
    suite.set("errors", str(len(errors)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def audit_command(
    paths: Sequence[str],
    *,
    output_format: str = "text",
    fail_on: str = DEFAULT_FAIL_ON,
    config: AuditConfig | None = None,
    rules: Sequence[str] | None = None,
    kube_version: str | None = None,
    objects: Sequence[Mapping[str, Any]] = (),
) -> tuple[str, int]:
    """Return (the report in ``output_format``, exit code) of auditing files and objects.

    Parameters
    ----------
    paths
        Manifest files and folders.
    output_format
        One of :data:`FORMATS`.
    fail_on
        The exit code is 1 when an unsuppressed finding is at least this severe, or when a
        file could not be read or an object fails its schema.
    config
        Thresholds and suppressions (:func:`load_config`).
    rules
        Rule ids or prefixes to run (all default rules when None).
    kube_version
        Validate the objects against this Kubernetes version's OpenAPI schema (``1.30``);
        None skips schema validation.
    objects
        Objects already read (from a live cluster), audited with the files'.
    """
    from rknb import __version__
    from rknb.audit import at_or_above, to_json, to_junit, to_sarif, to_text

    if output_format not in FORMATS:
        raise ParameterError("--format", f"{output_format!r} is not one of {', '.join(FORMATS)}")
    # Schema validation needs nothing the rules compute: a second process reads the files
    # and validates them while this one audits (the two take about as long).
    pending = None
    pool = None
    if kube_version and paths:
        schema_version(kube_version)  # a bad version is a usage error before any work
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=1)
        pending = pool.submit(_validate_paths, list(map(os.fspath, paths)), kube_version)
    try:
        inputs = read_inputs(paths) if paths else AuditInputs()
        everything = [*inputs.objects, *objects]
        errors = list(inputs.errors)
        if kube_version and objects:
            errors.extend(validate_objects(objects, kube_version))
        report = audit(everything, rules=rules, config=config)
        if pending is not None:
            errors.extend(pending.result())
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    report.skipped.extend(_skipped_of(d) for d in inputs.skipped)

    if output_format == "json":
        text = _with_errors_json(to_json(report), errors)
    elif output_format == "sarif":
        text = to_sarif(report, version=__version__, notifications=_notifications(errors))
    elif output_format == "junit":
        text = _with_errors_junit(to_junit(report), errors)
    else:
        text = to_text(report)
        if errors:
            text += f"\nErrors ({len(errors)}):\n" + "".join(f"    {e.text()}\n" for e in errors)
        blocking = len(at_or_above(report, fail_on))
        text += (
            f"\n{inputs.files} file(s), {len(everything)} object(s); {blocking} finding(s) at "
            f"{fail_on} or worse; {len(errors)} error(s).\n"
        )
    failed = bool(at_or_above(report, fail_on)) or bool(errors)
    return text, 1 if failed else 0


def _validate_paths(paths: list[str], kube_version: str) -> list[InputError]:
    return validate_objects(read_inputs(paths).objects, kube_version)


def _skipped_of(document: SkippedDocument) -> Any:
    from rknb.audit import Skipped

    return Skipped(
        document.kind, None, document.name, f"{document.path}:{document.line}: {document.reason}"
    )
