"""The daemon's HTTP front end: one FastAPI app (``app``) with the control paths (``control``),
the REST API for clients (``rest``) and for the SDK's remote workspace (``sdk_routes``), bearer
tokens (``auth``), ``/metrics`` (``metrics``) and ``/docs`` (``docs_page``), served inside the
daemon's own event loop on its unix socket (``server``) and on TCP (``tcp``). Handlers parse
requests and present what the services return; the client side is
``scheduler.services.client``.
"""
