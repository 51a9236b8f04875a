package v1

import "net/http"

// StatusForCode is the HTTP status the agent answers with for an error code.
// CodeForStatus is its inverse, used when an answer carries no JSON Error
// (a proxy, or a route the agent does not know).
func StatusForCode(code string) int {
	switch code {
	case CodeInvalidArgument:
		return http.StatusBadRequest
	case CodeNotFound, CodeCommandNotFound:
		return http.StatusNotFound
	case CodeAlreadyExists, CodeFailedPrecondition:
		return http.StatusConflict
	case CodePermissionDenied, CodeNotExecutable:
		return http.StatusForbidden
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// CodeForStatus is the error code an HTTP status stands for when the body
// did not say.
func CodeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge:
		return CodeInvalidArgument
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusConflict:
		return CodeFailedPrecondition
	case http.StatusForbidden:
		return CodePermissionDenied
	case http.StatusServiceUnavailable:
		return CodeUnavailable
	}
	return CodeInternal
}
