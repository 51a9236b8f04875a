package httpapi

import "net/http"

// routes registers every route the reference SDK uses. Keep this list the
// one place that says what the API serves.
func (s *Server) routes() {
	rt := &s.router
	rt.handle(http.MethodGet, "/health", s.health)
	rt.handle(http.MethodGet, "/metrics", s.serveMetrics)
	rt.handle(http.MethodGet, "/openapi.json", s.serveOpenAPI)

	rt.handle(http.MethodPost, "/run", s.run)
	rt.handle(http.MethodPost, "/run/stream", s.runStream)
	rt.handle(http.MethodPost, "/batch/run", s.batchRun)

	rt.handle(http.MethodGet, "/sandboxes", s.listSandboxes)
	rt.handle(http.MethodPost, "/sandboxes", s.createSandbox)
	rt.handle(http.MethodGet, "/sandboxes/by-uuid/{uuid}", s.getSandboxByUUID)
	rt.handle(http.MethodGet, "/sandboxes/{name}", s.getSandbox)
	rt.handle(http.MethodDelete, "/sandboxes/{name}", s.removeSandbox)
	rt.handle(http.MethodPost, "/sandboxes/{name}/start", s.startSandbox)
	rt.handle(http.MethodPost, "/sandboxes/{name}/stop", s.stopSandbox)
	rt.handle(http.MethodPost, "/sandboxes/{name}/exec", s.exec)
	rt.handle(http.MethodPost, "/sandboxes/{name}/extend", s.extendTTL)
	rt.handle(http.MethodGet, "/sandboxes/{name}/logs", s.sandboxLogs)
	rt.handle(http.MethodGet, "/sandboxes/{name}/network", s.getNetwork)
	rt.handle(http.MethodPut, "/sandboxes/{name}/network", s.setNetwork)
	rt.handle(http.MethodPost, "/sandboxes/{name}/network", s.setNetwork)
	rt.handle(http.MethodGet, "/sandboxes/{name}/attach", s.attachWS) // WebSocket, see ws.go
	rt.handle(http.MethodGet, "/sandboxes/{name}/exec/ws", s.execWS)  // WebSocket, see ws.go

	rt.handle(http.MethodPost, "/sandboxes/{name}/exec/detach", s.execDetached)
	rt.handle(http.MethodGet, "/sandboxes/{name}/exec/detached", s.detachedList)
	rt.handle(http.MethodGet, "/sandboxes/{name}/exec/detached/{id}", s.detachedStatus)
	rt.handle(http.MethodDelete, "/sandboxes/{name}/exec/detached/{id}", s.detachedKill)
	rt.handle(http.MethodGet, "/sandboxes/{name}/exec/detached/{id}/logs", s.detachedLogs)

	rt.handle(http.MethodPost, "/sandboxes/{name}/files", s.writeFiles)
	rt.handle(http.MethodGet, "/sandboxes/{name}/files/{path...}", s.readFile)
	rt.handle(http.MethodPut, "/sandboxes/{name}/files/{path...}", s.writeFile)
	rt.handle(http.MethodPost, "/sandboxes/{name}/files/{path...}", s.writeFile)
	rt.handle(http.MethodDelete, "/sandboxes/{name}/files/{path...}", s.deleteFile)

	// Routes of the SDK agentkernel does not serve yet: a clear 501, never
	// a 404 that reads as "no such sandbox".
	for _, f := range []struct{ prefix, what string }{
		{"/snapshots", "snapshots"},
		{"/orchestrations", "orchestrations"},
		{"/objects", "durable objects"},
		{"/schedules", "schedules"},
		{"/stores", "durable stores"},
	} {
		rt.handle("", f.prefix, notSupported(f.what))
		rt.handle("", f.prefix+"/{rest...}", notSupported(f.what))
	}
}

func (s *Server) health(w http.ResponseWriter, r *http.Request, _ params) {
	ok(w, http.StatusOK, "ok")
}
