// Package cloudimage holds the domain of the image service: images and their
// status machine, projects, users, roles and tokens, the error codes every
// API face maps to its own dialect, the store interfaces, and the services
// that carry the rules. It knows nothing of HTTP or SQL.
package cloudimage

import (
	"errors"
	"fmt"
)

// Error codes. They are few and stable: each API face maps them to its own
// statuses and result codes in one place, and the client maps them back.
const (
	EINVALID      = "invalid"      // the request is malformed or breaks a rule
	ENOTFOUND     = "not_found"    // no such thing, or the caller may not know of it
	ECONFLICT     = "conflict"     // the thing is not in a state that allows this
	EUNAUTHORIZED = "unauthorized" // no valid credentials
	EFORBIDDEN    = "forbidden"    // valid credentials, but not allowed
	ETOOLARGE     = "too_large"    // the request or the data exceeds a limit
	ETOOMANY      = "too_many"     // too many requests of this kind: try later
	EUNAVAILABLE  = "unavailable"  // a dependency is busy or down: try later
	EINTERNAL     = "internal"     // anything else: a bug or a failing dependency
)

// Error is an error the caller may see: Code classifies it and Message is
// written for a person. Errors without a code are internal and their text
// is never shown to a caller.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("cloudimage error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic text for internal errors so that their details never leak.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
