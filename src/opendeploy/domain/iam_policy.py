"""IAM identity-based policies: parsed once into frozen statements, then deciding requests.

``parse_policy`` turns a policy document (JSON text or a dict) into a ``Policy`` or raises
``MalformedPolicy`` naming what is wrong (what IAM answers with ``MalformedPolicyDocument``).
``evaluate`` decides one ``Request`` (action, resource ARN, condition-key context) against a
principal's policies the way IAM does for identity-based policies:

1. a statement applies when its ``Action``/``NotAction``, ``Resource``/``NotResource`` and every
   condition match the request;
2. an applicable ``Deny`` decides at once (explicit deny wins over any allow);
3. otherwise an applicable ``Allow`` allows;
4. otherwise the request is implicitly denied (by default a principal may do nothing).

The ``Decision`` names the statement that decided (policy name or ARN, Sid, position), for the
access-denied message and the audit trail. Actions match case-insensitively, resources
case-sensitively, both with ``*`` and ``?``. For CodeDeploy ARNs the separator after the resource type
is normalised (the permissions reference allows ``:`` or ``/`` there, guide L22489–22490): a policy's
``deploymentconfig/Name`` matches the canonical ``…:deploymentconfig:Name`` and ``instance:i-1`` the
canonical ``…:instance/i-1``. Condition operators, wildcards and policy variables: ``iam_conditions``.

``DecisionMemo`` remembers one principal's decisions by action, resource and the values of the context
keys its policies read (``context_keys``), for a server deciding the same few things many times a second.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

from opendeploy.domain.iam_conditions import (
    Condition,
    Context,
    ContextValue,
    MalformedPolicy,
    PatternSet,
    Variable,
    normalize_context,
    parse_condition_block,
)
from opendeploy.domain.json_text import parse_json

__all__ = [
    "Decision",
    "DecisionMemo",
    "Effect",
    "MalformedPolicy",
    "Outcome",
    "Policy",
    "Request",
    "Statement",
    "cached_policy",
    "canonical_codedeploy_arn",
    "context_keys",
    "evaluate",
    "evaluate_all",
    "parse_policy",
]

VERSION_2012 = "2012-10-17"
VERSION_2008 = "2008-10-17"  # IAM's default when a document names no Version; no policy variables
_DOCUMENT_KEYS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS = frozenset(
    {
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
        "Principal",
        "NotPrincipal",
    }
)

# The separator each CodeDeploy resource type takes in the ARNs the server emits (domain/arns.py).
_CODEDEPLOY_SEPARATORS = {
    "application": ":",
    "deploymentgroup": ":",
    "deploymentconfig": ":",
    "instance": "/",
}


def canonical_codedeploy_arn(arn: str) -> str:
    """``arn`` with the canonical separator after a CodeDeploy resource type; other ARNs unchanged.

    Applied to both the request's resource and the policy's patterns, so either spelling matches.
    """
    parts = arn.split(":", 5)
    if (
        len(parts) < 6
        or parts[0] != "arn"
        or parts[2] != "codedeploy"
        or "${" in arn[: -len(parts[5]) or None]
    ):
        return arn
    rest = parts[5]
    for resource_type, separator in _CODEDEPLOY_SEPARATORS.items():
        size = len(resource_type)
        if rest.startswith(resource_type) and rest[size : size + 1] in (":", "/"):
            if rest[size] != separator:
                return arn[: len(arn) - len(rest)] + resource_type + separator + rest[size + 1 :]
            return arn
    return arn


class Effect(Enum):
    ALLOW = "Allow"
    DENY = "Deny"


class Outcome(Enum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


@dataclass(frozen=True, slots=True)
class Request:
    """One thing to authorize: ``codedeploy:CreateDeployment`` on a deployment group's ARN, say.

    ``context`` holds the condition keys the server knows for the request (``aws:SourceIp``,
    ``aws:username``, ``aws:TagKeys`` …); key names are case-insensitive.
    """

    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    # Derived once, used by every statement.
    action_key: str = field(init=False, repr=False, compare=False)
    resource_key: str = field(init=False, repr=False, compare=False)
    condition_context: Context = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "action_key", self.action.lower())
        object.__setattr__(self, "resource_key", canonical_codedeploy_arn(self.resource))
        object.__setattr__(self, "condition_context", normalize_context(self.context))

    def on(self, resource: str, action: str | None = None) -> Request:
        """The same principal and context asking for another resource (or action)."""
        return Request(self.action if action is None else action, resource, self.context)


@dataclass(frozen=True, slots=True)
class Statement:
    index: int  # position in the policy's Statement list, from 0
    sid: str | None
    effect: Effect
    actions: PatternSet
    not_action: bool  # the patterns came from NotAction
    resources: PatternSet
    not_resource: bool
    conditions: tuple[Condition, ...]

    def applies(self, request: Request) -> bool:
        return self.names(request) and self.conditions_hold(request.condition_context)

    def names(self, request: Request) -> bool:
        """Whether the request's action and resource are this statement's (Action/NotAction,
        Resource/NotResource), its conditions aside."""
        context = request.condition_context
        if self.actions.matches(request.action_key, context) == self.not_action:
            return False
        return self.resources.matches(request.resource_key, context) != self.not_resource

    def conditions_hold(self, context: Context) -> bool:
        """Whether every condition holds in ``context`` (lower-cased keys)."""
        return all(condition.holds(context) for condition in self.conditions)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str  # the managed policy's ARN or the inline policy's name, for explanations
    version: str
    statements: tuple[Statement, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    action: str
    resource: str
    policy: str | None = None  # the deciding statement's policy; None for an implicit deny
    sid: str | None = None
    statement_index: int | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW

    def explain(self) -> str:
        """One line for logs and the audit trail: what was decided and by which statement."""
        if self.outcome is Outcome.IMPLICIT_DENY:
            return f"{self.action} on {self.resource}: implicitly denied (no statement allows it)"
        verb = "allowed" if self.allowed else "explicitly denied"
        statement = f"statement {self.sid!r}" if self.sid else f"statement #{self.statement_index}"
        return (
            f"{self.action} on {self.resource}: {verb} by {statement} of policy {self.policy or '(unnamed)'}"
        )


def _decided(request: Request, outcome: Outcome, policy: Policy, statement: Statement) -> Decision:
    return Decision(outcome, request.action, request.resource, policy.name, statement.sid, statement.index)


def evaluate(policies: Iterable[Policy], request: Request) -> Decision:
    """Decide ``request`` against all of a principal's policies (attached, inline and its groups')."""
    return _evaluate_statements(
        ((policy, statement) for policy in policies for statement in policy.statements), request
    )


def _evaluate_statements(
    statements: Iterable[tuple[Policy, Statement]],
    request: Request,
    applies: Callable[[Statement, Request], bool] = Statement.applies,
) -> Decision:
    allowed: Decision | None = None
    for policy, statement in statements:
        if statement.effect is Effect.DENY:
            if applies(statement, request):
                return _decided(request, Outcome.EXPLICIT_DENY, policy, statement)
        elif allowed is None and applies(statement, request):
            # Only a Deny can change the answer now; later Allows need no evaluation.
            allowed = _decided(request, Outcome.ALLOW, policy, statement)
    return allowed or Decision(Outcome.IMPLICIT_DENY, request.action, request.resource)


def allows_everything(policies: Iterable[Policy]) -> bool:
    """Whether ``policies`` allow every request whatever its action, resource and context: an Allow of
    ``*`` on ``*`` without conditions, and no Deny anywhere (AWS's AdministratorAccess). Such a caller's
    requests need not be looked at: the server skips the lookups that would name their resources."""
    unrestricted = False
    for policy in policies:
        for statement in policy.statements:
            if statement.effect is Effect.DENY:
                return False
            unrestricted = unrestricted or (
                statement.actions.anything
                and not statement.not_action
                and statement.resources.anything
                and not statement.not_resource
                and not statement.conditions
            )
    return unrestricted


RESOURCE_TAG_PREFIX = "aws:resourcetag/"


def uses_resource_tags(policies: Iterable[Policy]) -> bool:
    """Whether any condition of ``policies`` reads ``aws:ResourceTag/…``: only then must the server look
    up the tags of each resource a request names (a query per resource) before deciding."""
    return any(
        condition.key.startswith(RESOURCE_TAG_PREFIX)
        for policy in policies
        for statement in policy.statements
        for condition in statement.conditions
    )


def context_keys(policies: Iterable[Policy]) -> tuple[str, ...]:
    """Every context key (lower-cased) a decision over ``policies`` can depend on: the keys their
    conditions test and the policy variables (``${aws:username}``) in their actions, resources and
    condition values. A superset is harmless; a key missing would make ``DecisionMemo`` wrong."""
    keys: set[str] = set()
    for policy in policies:
        for statement in policy.statements:
            for patterns in (statement.actions, statement.resources):
                keys.update(
                    part.key
                    for template in patterns.templated
                    for part in template
                    if isinstance(part, Variable)
                )
            for condition in statement.conditions:
                keys.add(condition.key)
                for value in condition.values:
                    keys.update(_variable_key(match) for match in _VARIABLE_IN_TEXT.findall(value))
    return tuple(sorted(keys))


_VARIABLE_IN_TEXT = re.compile(r"\$\{([^}]*)\}")


def _variable_key(body: str) -> str:
    return body.split(",", 1)[0].strip().lower()


def _hashable(value: object) -> object:
    """``value`` as part of a memo key; values equal in Python but not to a condition (``True`` and
    ``1``: "true" and "1" as text) stay apart."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(_hashable(item) for item in value)
    return (type(value), value)


class DecisionMemo:
    """The decisions of one principal's policies, remembered by what can change them: the action, the
    resource and the values of ``context_keys`` (so ``aws:CurrentTime`` in a condition makes a new entry
    each second, and a policy that reads no key decides each (action, resource) once). A busy caller's
    requests then cost a dictionary lookup instead of a pass over every statement. The memo lives as
    long as the policies it was made for; at ``max_entries`` it starts over.

    A decision not remembered yet looks only at the statements whose actions can match and whose
    conditions hold (``_candidates_for``): conditions read only the context, so within a second a caller's
    requests on ever new resources (a GetDeployment per deployment) test them once, not per resource."""

    def __init__(self, policies: Sequence[Policy], max_entries: int = 4096) -> None:
        self.policies = tuple(policies)
        self.keys = context_keys(self.policies)
        self.reads_resource_tags = uses_resource_tags(self.policies)
        self.max_entries = max_entries
        self._decisions: dict[tuple[object, ...], Decision] = {}
        self._by_action: dict[str, tuple[tuple[Policy, Statement], ...]] = {}
        self._candidates: dict[tuple[object, ...], tuple[tuple[Policy, Statement], ...]] = {}

    def decide(self, action: str, resource: str, context: Context) -> Decision:
        """``evaluate(policies, Request(action, resource, context))``; ``context`` with lower-cased keys
        (``normalize_context``)."""
        values = tuple(_hashable(context.get(name)) for name in self.keys)
        key = (action, resource, *values)
        decision = self._decisions.get(key)
        if decision is None:
            request = Request(action, resource, context)
            candidates = self._candidates_for(request, values)
            decision = _evaluate_statements(candidates, request, Statement.names)
            if len(self._decisions) >= self.max_entries:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    def _candidates_for(
        self, request: Request, values: tuple[object, ...]
    ) -> tuple[tuple[Policy, Statement], ...]:
        """The statements, in order, whose actions can match and whose conditions hold for a context
        with these ``values`` of ``keys``: only their resources are left to match."""
        key = (request.action_key, values)
        found = self._candidates.get(key)
        if found is None:
            context = request.condition_context
            found = tuple(
                (policy, statement)
                for policy, statement in self._statements_for(request.action_key)
                if statement.conditions_hold(context)
            )
            if len(self._candidates) >= self.max_entries:
                self._candidates.clear()
            self._candidates[key] = found
        return found

    def _statements_for(self, action_key: str) -> tuple[tuple[Policy, Statement], ...]:
        """The statements, in order, whose Action/NotAction can match ``action_key``: one pass over
        the patterns per action instead of per request (a pattern with a policy variable always stays)."""
        found = self._by_action.get(action_key)
        if found is None:
            found = tuple(
                (policy, statement)
                for policy in self.policies
                for statement in policy.statements
                if statement.actions.templated
                or statement.actions.matches(action_key, {}) != statement.not_action
            )
            self._by_action[action_key] = found
        return found


def evaluate_all(policies: Sequence[Policy], requests: Iterable[Request]) -> Decision:
    """Decide several (action, resource) pairs that must all be allowed (a rename, a batch …).

    Returns the first decision that is not an Allow, else the last Allow. ``ValueError`` if empty.
    """
    decision: Decision | None = None
    for request in requests:
        decision = evaluate(policies, request)
        if not decision.allowed:
            return decision
    if decision is None:
        raise ValueError("evaluate_all needs at least one request")
    return decision


# --- parsing --------------------------------------------------------------------------------------------


def _strings(value: object, element: str, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise MalformedPolicy(f"{where}: {element} must not be an empty list")
    for item in items:
        if not isinstance(item, str) or not item:
            raise MalformedPolicy(f"{where}: {element} must be a non-empty string or a list of them")
    return tuple(items)


def _one_of(statement: Mapping[str, Any], positive: str, negative: str, where: str) -> tuple[str, bool]:
    if positive in statement and negative in statement:
        raise MalformedPolicy(f"{where}: a statement takes {positive} or {negative}, not both")
    if positive in statement:
        return positive, False
    if negative in statement:
        return negative, True
    kind = "actions" if positive == "Action" else "resources"
    raise MalformedPolicy(f"{where}: Policy statement must contain {kind} ({positive} or {negative}).")


def _parse_statement(raw: object, index: int, variables: bool) -> Statement:
    where = f"Statement {index}"
    if not isinstance(raw, dict):
        raise MalformedPolicy(f"{where}: must be a JSON object")
    if isinstance(raw.get("Sid"), str) and raw["Sid"]:
        where = f"Statement {index} ({raw['Sid']})"
    unknown = sorted(set(raw) - _STATEMENT_KEYS)
    if unknown:
        raise MalformedPolicy(f"{where}: unknown element(s) {', '.join(unknown)}")
    if "Principal" in raw or "NotPrincipal" in raw:
        raise MalformedPolicy(f"{where}: Policy document should not specify a principal.")
    sid = raw.get("Sid")
    if sid is not None and (not isinstance(sid, str) or not sid.isascii() or (sid and not sid.isalnum())):
        raise MalformedPolicy(f"{where}: Sid must contain only letters (A-Z, a-z) and digits (0-9)")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise MalformedPolicy(f"{where}: Effect must be Allow or Deny, not {effect!r}")

    action_element, not_action = _one_of(raw, "Action", "NotAction", where)
    actions = _strings(raw[action_element], action_element, where)
    for action in actions:
        prefix, colon, name = action.partition(":")
        if action != "*" and (not colon or not prefix or not name):
            raise MalformedPolicy(
                f"{where}: {action_element} {action!r} must be '*' or service:action (e.g. codedeploy:Get*)"
            )

    resource_element, not_resource = _one_of(raw, "Resource", "NotResource", where)
    resources = _strings(raw[resource_element], resource_element, where)
    for resource in resources:
        if resource != "*" and not resource.startswith("arn:"):
            raise MalformedPolicy(f"{where}: {resource_element} {resource!r} must be '*' or an ARN")

    try:
        conditions = parse_condition_block(raw["Condition"], variables) if "Condition" in raw else ()
    except MalformedPolicy as error:
        raise MalformedPolicy(f"{where}: {error}") from None
    return Statement(
        index=index,
        sid=sid or None,
        effect=Effect(effect),
        # Actions carry no policy variables; resources do (2012-10-17 only).
        actions=PatternSet.build(actions, "action", variables=False),
        not_action=not_action,
        resources=PatternSet.build(
            [canonical_codedeploy_arn(resource) for resource in resources], "arn", variables
        ),
        not_resource=not_resource,
        conditions=conditions,
    )


def parse_policy(document: str | bytes | Mapping[str, Any], name: str = "") -> Policy:
    """Parse an identity-based policy document; ``MalformedPolicy`` says what is wrong with it."""
    if isinstance(document, str | bytes):
        try:
            parsed = parse_json(document, "The policy document")
        except ValueError as error:
            raise MalformedPolicy(f"Syntax errors in policy: {error}") from None
    else:
        # A dict from code: round-trip so the statements never share mutable state with the caller.
        parsed = json.loads(json.dumps(document))
    if not isinstance(parsed, dict):
        raise MalformedPolicy("The policy document must be a JSON object")
    unknown = sorted(set(parsed) - _DOCUMENT_KEYS)
    if unknown:
        raise MalformedPolicy(
            f"Unknown policy element(s) {', '.join(unknown)} (allowed: Version, Id, Statement)"
        )
    version = parsed.get("Version", VERSION_2008)
    if version not in (VERSION_2012, VERSION_2008):
        raise MalformedPolicy(f"The policy Version must be {VERSION_2012} or {VERSION_2008}, not {version!r}")
    if "Statement" not in parsed:
        raise MalformedPolicy("The policy document has no Statement")
    raw_statements = parsed["Statement"]
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list) or not raw_statements:
        raise MalformedPolicy("Statement must be a statement object or a non-empty list of them")
    variables = version == VERSION_2012
    statements = tuple(_parse_statement(raw, index, variables) for index, raw in enumerate(raw_statements))
    sids = [statement.sid for statement in statements if statement.sid]
    duplicates = sorted({sid for sid in sids if sids.count(sid) > 1})
    if duplicates:
        raise MalformedPolicy(
            f"Statement IDs (SID) in a single policy must be unique: {', '.join(duplicates)}"
        )
    return Policy(name, version, statements)


@lru_cache(maxsize=2048)
def cached_policy(document: str, name: str = "") -> Policy:
    """``parse_policy`` for stored JSON text, memoised: a 20-statement policy takes about a millisecond
    to parse and some tens of microseconds to evaluate, so per-request callers should parse through this.
    A malformed document raises every time (exceptions are not cached)."""
    return parse_policy(document, name)
