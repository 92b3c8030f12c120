"""A local, in-memory, Kubernetes-compatible API server (a test and demo harness).

Public entry points: `server.SandboxServer`, `server.SandboxThread`,
`server.serve_forever`, `crds.default_crd_documents`, and the admission hook types in
`admission`.  See docs in `server` for usage.
"""
