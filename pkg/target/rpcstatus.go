package target

import (
	"context"
	"errors"
	"strconv"
)

// rpcCode is a gRPC status code (google.golang.org/grpc/codes).
type rpcCode uint32

// The gRPC status codes ephem tells apart.
const (
	codeOK                rpcCode = 0
	codeCanceled          rpcCode = 1
	codeUnknown           rpcCode = 2
	codeInvalidArgument   rpcCode = 3
	codeDeadlineExceeded  rpcCode = 4
	codeNotFound          rpcCode = 5
	codeResourceExhausted rpcCode = 8
	codeUnimplemented     rpcCode = 12
	codeUnavailable       rpcCode = 14
)

var rpcCodeNames = [...]string{"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
	"AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
	"Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"}

// String is the code's name, as gRPC spells it.
func (c rpcCode) String() string {
	if int(c) < len(rpcCodeNames) {
		return rpcCodeNames[c]
	}
	return "Code(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// statusError is a call's gRPC status other than OK: the server's answer,
// or, with cause set, the status ephem gives a call that got no answer.
type statusError struct {
	code  rpcCode
	msg   string
	cause error
}

func (e *statusError) Error() string {
	return "rpc error: code = " + e.code.String() + " desc = " + e.msg
}

func (e *statusError) Unwrap() error { return e.cause }

// rpcStatus is err's code and message: OK for nil, the status of a
// statusError, else Unknown and err's text (as grpc's status.Convert).
func rpcStatus(err error) (rpcCode, string) {
	if err == nil {
		return codeOK, ""
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.code, se.msg
	}
	return codeUnknown, err.Error()
}

// rpcCodeOf is err's code (see rpcStatus).
func rpcCodeOf(err error) rpcCode {
	c, _ := rpcStatus(err)
	return c
}

// serverAnswered reports whether err is a status the server gave (a call
// that got no answer is a plain error until grpcError makes it a status).
func serverAnswered(err error) bool {
	var se *statusError
	return errors.As(err, &se) && se.cause == nil
}

// grpcError is err as gRPC's client gives it: the server's status, or
// Unavailable (DeadlineExceeded, Canceled) for a call that got no answer,
// which still wraps what happened.
func grpcError(ctx context.Context, err error) error {
	var se *statusError
	if err == nil || errors.As(err, &se) {
		return err
	}
	code := codeUnavailable
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		code = codeDeadlineExceeded
	case errors.Is(ctx.Err(), context.Canceled):
		code = codeCanceled
	}
	return &statusError{code: code, msg: err.Error(), cause: err}
}
