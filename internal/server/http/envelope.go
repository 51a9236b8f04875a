package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/agentkernel-go/agentkernel/internal/errdefs"
)

// envelope is agentkernel's response wrapper: {"success":…,"data":…,"error":…}.
type envelope struct {
	Success bool   `json:"success"`
	Data    any    `json:"data,omitempty"`
	Error   string `json:"error,omitempty"`
}

// errTooLarge marks a body or file over the size limit (413).
var errTooLarge = errors.New("request body too large")

// errorStatus is the HTTP edge's one translation of errors to statuses.
func errorStatus(err error) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || errors.Is(err, errTooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	return errdefs.HTTPStatus(err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"success":false,"error":"encoding the response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// ok writes a successful envelope around data.
func ok(w http.ResponseWriter, status int, data any) {
	writeJSON(w, status, envelope{Success: true, Data: data})
}

// fail writes err's status and message in the envelope; data, if not nil,
// rides along (the exit code and output of a failed command).
func fail(w http.ResponseWriter, err error, data any) {
	writeJSON(w, errorStatus(err), envelope{Success: false, Error: err.Error(), Data: data})
}

// badRequest is an invalid-argument error.
func badRequest(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}
