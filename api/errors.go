package api

import (
	"errors"
	"net/http"
)

// Error codes of the v1 API. Each maps to one HTTP status (StatusOf).
const (
	CodeInvalidRequest     = "invalid_request"
	CodeUnauthorized       = "unauthorized"
	CodeLicenseSuspended   = "license_suspended"
	CodeLicenseExpired     = "license_expired"
	CodeLicenseRevoked     = "license_revoked"
	CodeFeatureNotEntitled = "feature_not_entitled"
	CodeNotFound           = "not_found"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeNoSeatsAvailable   = "no_seats_available"
	CodeConflict           = "conflict"
	CodeLeaseExpired       = "lease_expired"
	CodeTooLarge           = "too_large"
	CodeRateLimited        = "rate_limited"
	CodeInternal           = "internal"
	CodeNoLeader           = "no_leader"
	CodeTimeout            = "timeout"
	CodeBorrowNotAllowed   = "borrow_not_allowed"
	CodeKeyInUse           = "key_in_use"
)

var statusOf = map[string]int{
	CodeInvalidRequest:     http.StatusBadRequest,
	CodeUnauthorized:       http.StatusUnauthorized,
	CodeLicenseSuspended:   http.StatusForbidden,
	CodeLicenseExpired:     http.StatusForbidden,
	CodeLicenseRevoked:     http.StatusForbidden,
	CodeFeatureNotEntitled: http.StatusForbidden,
	CodeNotFound:           http.StatusNotFound,
	CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
	CodeNoSeatsAvailable:   http.StatusConflict,
	CodeConflict:           http.StatusConflict,
	CodeLeaseExpired:       http.StatusGone,
	CodeTooLarge:           http.StatusRequestEntityTooLarge,
	CodeRateLimited:        http.StatusTooManyRequests,
	CodeInternal:           http.StatusInternalServerError,
	CodeNoLeader:           http.StatusServiceUnavailable,
	CodeTimeout:            http.StatusServiceUnavailable,
	CodeBorrowNotAllowed:   http.StatusForbidden,
	CodeKeyInUse:           http.StatusConflict,
}

// StatusOf returns the HTTP status of an error code; unknown codes are 500.
func StatusOf(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is the one error type that crosses layers: the node returns it, the
// transport writes it, the client decodes it. errors.Is matches on Code, so
// errors.Is(err, api.ErrNoSeats) works on both sides of the wire.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfter, in seconds, is sent as the Retry-After header on 503 and 429.
	RetryAfter int `json:"-"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// Is makes errors.Is compare codes.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	return false
}

// Status is the HTTP status of the error.
func (e *Error) Status() int { return StatusOf(e.Code) }

// ErrorResponse is the JSON body of every error answer.
type ErrorResponse struct {
	Error Error `json:"error"`
}

// Errorf builds an *Error.
func Errorf(code, message string) *Error { return &Error{Code: code, Message: message} }

// Sentinels for errors.Is.
var (
	ErrInvalidRequest     = &Error{Code: CodeInvalidRequest}
	ErrUnauthorized       = &Error{Code: CodeUnauthorized}
	ErrLicenseSuspended   = &Error{Code: CodeLicenseSuspended}
	ErrLicenseExpired     = &Error{Code: CodeLicenseExpired}
	ErrLicenseRevoked     = &Error{Code: CodeLicenseRevoked}
	ErrFeatureNotEntitled = &Error{Code: CodeFeatureNotEntitled}
	ErrNotFound           = &Error{Code: CodeNotFound}
	ErrNoSeats            = &Error{Code: CodeNoSeatsAvailable}
	ErrLeaseExpired       = &Error{Code: CodeLeaseExpired}
	ErrTooLarge           = &Error{Code: CodeTooLarge}
	ErrNoLeader           = &Error{Code: CodeNoLeader}
	ErrBorrowNotAllowed   = &Error{Code: CodeBorrowNotAllowed}
	ErrKeyInUse           = &Error{Code: CodeKeyInUse}
)
