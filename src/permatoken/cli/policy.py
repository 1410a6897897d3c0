"""policy show / policy set: renewal policies per credential and per tenant."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .._exceptions import InputError
from ..models import validate_name
from .app import app, console, print_json, state, sub_app

policy_app = sub_app(
    "Show or change renewal policies (per credential, or per tenant with --tenant)."
)
app.add_typer(policy_app, name="policy")

SETTABLE = (
    "renew_at",
    "renew_before",
    "jitter",
    "max_age",
    "inspect_every",
    "grace",
    "remind_before",
    "backoff_base",
    "backoff_cap",
)


def _target(name: str | None, tenant: str | None) -> None:
    if (name is None) == (tenant is None):
        raise InputError("give a credential NAME or --tenant TENANT (one of them)")
    if name is not None:
        validate_name(name)
    if tenant is not None:
        validate_name(tenant)
        if "/" in tenant:
            raise InputError("a tenant is the first segment of credential names, without '/'")


def _lifetime(store: Any, name: str) -> float | None:
    cur = store.version(name)
    if cur.meta.expires_at is None:
        return None
    start = cur.meta.issued_at or cur.created_at
    return float(max((cur.meta.expires_at - start).total_seconds(), 1.0))


@policy_app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="Credential name.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Show a tenant's layer instead.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The effective policy and where each layer comes from."""
    from ..policy import describe, resolve, summary
    from ..store.tenant_policies import get_tenant_policy

    _target(name, tenant)
    st = state(ctx)
    store = st.open_store()
    try:
        if tenant is not None:
            layer = get_tenant_policy(store, tenant)
            layers = {"global": st.settings.policy, "tenant": layer}
        else:
            assert name is not None
            cred = store.get(name)
            layers = {
                "global": st.settings.policy,
                "tenant": get_tenant_policy(store, cred.tenant),
                "credential": cred.policy,
            }
    finally:
        store.close()
    effective = resolve(*layers.values())
    data = {
        "name": name,
        "tenant": tenant,
        "effective": describe(effective),
        "summary": summary(effective),
        "layers": layers,
    }
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]{name or 'tenant ' + str(tenant)}[/]: {summary(effective)}")
    for key, value in describe(effective).items():
        source = next((lname for lname in reversed(layers) if key in layers[lname]), "default")
        shown = ",".join(value) if isinstance(value, list) else value
        console.print(f"  {key:<16} {shown!s:<20} [dim]{source}[/]")


@policy_app.command("set")
def set_(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="Credential name.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Set the tenant layer instead.")] = None,
    renew_at: Annotated[
        str | None, typer.Option("--renew-at", help="Fraction of the lifetime, e.g. 0.66.")
    ] = None,
    renew_before: Annotated[str | None, typer.Option("--renew-before", help="e.g. 10d.")] = None,
    jitter: Annotated[
        str | None, typer.Option(help="Fraction 0-0.5 of the time before the due point.")
    ] = None,
    max_age: Annotated[
        str | None, typer.Option("--max-age", help="Rotate never-expiring tokens after, e.g. 90d.")
    ] = None,
    inspect_every: Annotated[str | None, typer.Option("--inspect-every", help="e.g. 1d.")] = None,
    grace: Annotated[
        str | None, typer.Option(help="Keep the previous version this long, e.g. 1h.")
    ] = None,
    remind_before: Annotated[
        str | None, typer.Option("--remind-before", help="e.g. 14d,7d,3d,1d.")
    ] = None,
    backoff_base: Annotated[str | None, typer.Option("--backoff-base", help="e.g. 1m.")] = None,
    backoff_cap: Annotated[str | None, typer.Option("--backoff-cap", help="e.g. 6h.")] = None,
    revoke_previous: Annotated[
        bool | None,
        typer.Option(
            "--revoke-previous/--keep-previous",
            help="Revoke the previous version upstream after the grace period.",
        ),
    ] = None,
    unset: Annotated[
        list[str] | None,
        typer.Option("--unset", help="Remove an override (repeatable), e.g. --unset renew_before."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Change policy overrides; invalid values are refused and nothing changes."""
    from ..policy import (
        POLICY_KEYS,
        check_layer_against_lifetime,
        parse_overrides,
        resolve,
        summary,
        to_layer,
    )
    from ..store.tenant_policies import get_tenant_policy, set_tenant_policy

    _target(name, tenant)
    raw: dict[str, Any] = {
        k: v
        for k, v in {
            "renew_at": renew_at,
            "renew_before": renew_before,
            "jitter": jitter,
            "max_age": max_age,
            "inspect_every": inspect_every,
            "grace": grace,
            "remind_before": remind_before,
            "backoff_base": backoff_base,
            "backoff_cap": backoff_cap,
            "revoke_previous": revoke_previous,
        }.items()
        if v is not None
    }
    removed = tuple(k.replace("-", "_") for k in (unset or []))
    for key in removed:
        if key not in POLICY_KEYS:
            raise InputError(f"unknown policy setting {key!r}; known: {', '.join(POLICY_KEYS)}")
    if not raw and not removed:
        raise InputError(
            "nothing to change", hint="e.g. `permatoken policy set NAME --renew-before 10d`"
        )
    parsed = parse_overrides(raw)
    st = state(ctx)
    store = st.open_store()
    try:
        if tenant is not None:
            layer = set_tenant_policy(store, tenant, raw, unset=removed)
            effective = resolve(st.settings.policy, layer)
            target = f"tenant {tenant}"
        else:
            assert name is not None
            cred = store.get(name)
            layer = dict(cred.policy) | to_layer(parsed)
            for key in removed:
                layer.pop(key, None)
            effective = resolve(st.settings.policy, get_tenant_policy(store, cred.tenant), layer)
            check_layer_against_lifetime(effective, _lifetime(store, name))
            store.update_credential(name, policy=layer, actor="cli")
            _replan(st.settings, store, name)
            target = name
    finally:
        store.close()
    if as_json:
        print_json({"target": target, "overrides": layer, "summary": summary(effective)})
        return
    console.print(f"policy of {target} updated: {summary(effective)}")


def _replan(settings: Any, store: Any, name: str) -> None:
    """The due time follows the new policy at once (a rotation in progress plans its own)."""
    from .._exceptions import NotFoundError
    from ..rotation import plan_next
    from ..scheduler.policies import PolicyLayers

    cred = store.get(name)
    if cred.rotation_step:
        return
    try:
        cur = store.version(name)
    except NotFoundError:
        return
    policy = PolicyLayers(settings, store).for_credential(cred)
    due, action = plan_next(policy, cur, cred, store.clock.now())
    store.update_credential(name, next_due_at=due, next_action=action)
