"""``GET/POST/DELETE /{waba-id}/subscribed_apps``: which apps get a WABA's webhooks (10b).

After Embedded Signup a Tech Provider subscribes its app to the client's WABA with the business
token; without it no (non-``PARTNER_*``) webhook arrives for that WABA. The token needs
``whatsapp_business_management`` on the WABA; the call counts against the WABA's BUC budget.
"""

from __future__ import annotations

from typing import Any

from permatoken.sandbox import signup
from permatoken.sandbox.auth import authenticate
from permatoken.sandbox.errors import unknown_object
from permatoken.sandbox.request import SandboxRequest
from permatoken.sandbox.routes_graph import MANAGEMENT, reach_waba


def subscribed_apps(req: SandboxRequest) -> dict[str, Any]:
    token = authenticate(req, scopes=MANAGEMENT)
    state = req.state
    waba = state.wabas.get(req.args[0])
    if waba is None:
        raise unknown_object(req.args[0], req.method.lower())
    reach_waba(req, token, waba, waba.id)
    state.usage.record_waba_call(token.app_id, waba.id, req.waba_active, req.now, req.config)
    if req.method == "POST":
        signup.subscribe(state, waba.id, token.app_id)
        return {"success": True}
    if req.method == "DELETE":
        signup.unsubscribe(state, waba.id, token.app_id)
        return {"success": True}
    data = []
    for app_id in state.subscriptions.get(waba.id, []):
        app = state.apps[app_id]
        link = f"https://www.facebook.com/games/?app_id={app.id}"
        data.append({"whatsapp_business_api_data": {"id": app.id, "link": link, "name": app.name}})
    return {"data": data}
