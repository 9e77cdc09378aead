"""Access control on every request: the caller (after impersonation), RBAC on the request, and the checks
the RBAC registry makes on writes to roles and bindings (no escalation without ``escalate`` or ``bind``).

The lab's own controllers and kubelets call ``Objects`` directly and are not subject to it, as the real
control plane's components hold their own (bound) permissions.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...core.errors import ApiError
from ...core.http import USER, UserInfo
from .authn import ANONYMOUS, AUTHENTICATED, with_authenticated
from .rbac import GROUP, Attributes, Authorizer, compact, compact_string, forbidden, missing_rules, quoted_list
from .resources import ResourceType
from .store import Store

Obj = dict[str, Any]
CALLER = web.RequestKey("caller", UserInfo)  # request[CALLER]: who the request acts as (after impersonation)
SA_PREFIX = "system:serviceaccount:"
_EXTRA = "impersonate-extra-"
UNAUTHENTICATED = "system:unauthenticated"


def authenticated_user(request: web.Request) -> UserInfo:
    """The authenticated caller as a UserInfo (a plain user name from other authenticators gets
    ``system:authenticated``; no credentials at all is ``system:anonymous``)."""
    user = request.get(USER)
    if isinstance(user, UserInfo):
        return user
    return with_authenticated(str(user), ()) if user else ANONYMOUS


class Access:
    """Decides who a request acts as and whether it may do what it asks."""

    def __init__(self, store: Store) -> None:
        self.authorizer = Authorizer(store)

    def require(self, a: Attributes) -> None:
        """Raise 403 Forbidden, worded as the API server words it, unless ``a`` is allowed."""
        allowed, reason = self.authorizer.authorize(a)
        if not allowed:
            raise forbidden(a, reason)

    # -- impersonation -----------------------------------------------------
    def caller(self, request: web.Request) -> UserInfo:
        """Who the request acts as: the authenticated user, or whom it impersonates if that user may."""
        user = authenticated_user(request)
        name = request.headers.get("Impersonate-User", "")
        groups = tuple(request.headers.getall("Impersonate-Group", []))
        uid = request.headers.get("Impersonate-Uid", "")
        extra: dict[str, tuple[str, ...]] = {}
        for header, value in request.headers.items():
            if header.lower().startswith(_EXTRA):
                key = header[len(_EXTRA):].lower()
                extra[key] = (*extra.get(key, ()), value)
        if not (name or groups or uid or extra):
            return user
        if not name:  # Go prints the requests as ObjectReference structs (Kind Namespace Name UID …)
            asked = [*(f"{{Group  {g}    }}" for g in groups),
                     *(f"{{UserExtra  {v}  authentication.k8s.io/v1  {key}}}" for key, vs in extra.items()
                       for v in vs),
                     *([f"{{UID  {uid}  authentication.k8s.io/v1  }}"] if uid else [])]
            raise ApiError(500, "InternalError", f'Internal Server Error: "{request.path_qs}": requested '
                                                 f"[{' '.join(asked)}] without impersonating a user")
        checks = [self._impersonate_user(user, name)]
        checks += [Attributes(user, "impersonate", True, resource="groups", name=g) for g in groups]
        if uid:
            checks.append(Attributes(user, "impersonate", True, api_group="authentication.k8s.io", resource="uids",
                                     name=uid))
        for key, values in extra.items():
            checks += [Attributes(user, "impersonate", True, api_group="authentication.k8s.io",
                                  resource="userextras", subresource=key, name=v) for v in values]
        for a in checks:
            self.require(a)
        if name.startswith(SA_PREFIX) and not groups:
            ns = name[len(SA_PREFIX):].partition(":")[0]
            groups = ("system:serviceaccounts", f"system:serviceaccounts:{ns}")
        if name == ANONYMOUS.name:
            groups = groups if UNAUTHENTICATED in groups else (*groups, UNAUTHENTICATED)
        elif AUTHENTICATED not in groups and UNAUTHENTICATED not in groups:
            groups = (*groups, AUTHENTICATED)
        return UserInfo(name, groups, uid, tuple(sorted(extra.items())))

    @staticmethod
    def _impersonate_user(user: UserInfo, name: str) -> Attributes:
        if name.startswith(SA_PREFIX) and name.count(":") == 3:
            ns, _, sa = name[len(SA_PREFIX):].partition(":")
            return Attributes(user, "impersonate", True, namespace=ns, resource="serviceaccounts", name=sa)
        return Attributes(user, "impersonate", True, resource="users", name=name)

    # -- writes to RBAC objects --------------------------------------------
    def check_rbac_write(self, user: UserInfo, rt: ResourceType, namespace: str, obj: Obj, url_name: str) -> None:
        """Refuse a Role or ClusterRole granting more than ``user`` holds (without ``escalate``) and a binding
        to a role whose rules ``user`` does not hold (without ``bind`` on it), as the RBAC registry does.
        ``url_name`` is the name in the request's path (none on create), which ``escalate`` is checked for."""
        if rt.group != GROUP or "system:masters" in user.groups or not isinstance(obj, dict):
            return
        name = (obj.get("metadata") or {}).get("name", "")
        if rt.plural in ("roles", "clusterroles"):
            if self.authorizer.allowed(Attributes(user, "escalate", True, namespace=namespace, api_group=GROUP,
                                                  resource=rt.plural, name=url_name)):
                return
            if obj.get("aggregationRule") and self._missing(user, namespace, _FULL_AUTHORITY):
                raise _forbidden(rt, name, "must have cluster-admin privileges to use the aggregationRule")
            self._no_escalation(user, rt, namespace, name, list(obj.get("rules") or []))
        elif rt.plural in ("rolebindings", "clusterrolebindings"):
            ref = obj.get("roleRef") or {}
            plural = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
            if self.authorizer.allowed(Attributes(user, "bind", True, namespace=namespace, api_group=GROUP,
                                                  resource=plural, name=ref.get("name", ""))):
                return
            rules, error = self.authorizer.role_rules(ref, namespace)
            if error:
                raise _forbidden(rt, name, error)
            self._no_escalation(user, rt, namespace, name, rules)

    def _missing(self, user: UserInfo, namespace: str, wanted: list[Obj]) -> list[Obj]:
        return missing_rules(self.authorizer.rules_for(user, namespace)[0], wanted)

    def _no_escalation(self, user: UserInfo, rt: ResourceType, namespace: str, name: str, rules: list[Obj]) -> None:
        owned, errors = self.authorizer.rules_for(user, namespace)
        missing = missing_rules(owned, rules)
        if not missing:
            return
        lines = sorted({compact_string(r) for r in compact(missing)})
        text = (f'user "{user.name}" (groups={quoted_list(user.groups)}) is attempting to grant RBAC permissions '
                "not currently held:\n" + "\n".join(lines))
        if errors:
            text += f"; resolution errors: [{', '.join(errors)}]"
        raise _forbidden(rt, name, text)


_FULL_AUTHORITY = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]


def _forbidden(rt: ResourceType, name: str, text: str) -> ApiError:
    return ApiError(403, "Forbidden", f'{rt.qualified} "{name}" is forbidden: {text}',
                    {"name": name, "group": rt.group, "kind": rt.plural})
