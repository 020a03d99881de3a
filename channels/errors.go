package channels

import (
	"errors"
	"fmt"
)

// Code classifies a domain error. The API maps codes to HTTP statuses in one place.
type Code int

const (
	CodeInternal     Code = iota // unexpected failure
	CodeNotFound                 // the thing does not exist
	CodeInvalid                  // the request is malformed or fails validation
	CodeConflict                 // the thing already exists (duplicate drain URL, ...)
	CodeLimit                    // a configured maximum was reached (drains per channel, ...)
	CodeUnauthorized             // missing or wrong credentials
	CodeForbidden                // valid credentials without the needed permission
	CodeUnavailable              // temporarily unable (backend down, buffer full, booting)
)

// Error is the one error type of the domain. Message is what callers
// (and API clients) see; Err, when set, is the underlying cause, for
// errors.Is and errors.As.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause (nil when there is none).
func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with fmt.Errorf's formatting: the operands of %w
// verbs become its cause.
func Errorf(code Code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	e := &Error{Code: code, Message: err.Error()}
	switch w := err.(type) {
	case interface{ Unwrap() error }: // one %w
		e.Err = w.Unwrap()
	case interface{ Unwrap() []error }: // several
		e.Err = err
	}
	return e
}

// ErrorCode returns the Code of err: the Code of the first *Error in its
// chain, CodeInternal otherwise (and for nil).
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// IsNotFound reports whether err has CodeNotFound.
func IsNotFound(err error) bool { return err != nil && ErrorCode(err) == CodeNotFound }

// Common errors.
var (
	ErrChannelNotFound = &Error{Code: CodeNotFound, Message: "channel not found"}
	ErrDrainNotFound   = &Error{Code: CodeNotFound, Message: "drain not found"}
	ErrTokenNotFound   = &Error{Code: CodeNotFound, Message: "token not found"}
	ErrCredNotFound    = &Error{Code: CodeNotFound, Message: "credential not found"}
	ErrSessionNotFound = &Error{Code: CodeNotFound, Message: "session not found"}
	ErrDrainExists     = &Error{Code: CodeConflict, Message: "already exists"}
	ErrTooManyDrains   = &Error{Code: CodeLimit, Message: "maximum number of drains reached"}
	ErrLogFull         = &Error{Code: CodeUnavailable, Message: "log buffer full"}
	ErrClosed          = &Error{Code: CodeUnavailable, Message: "closed"}
)
