package target

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The few protobuf messages of the CRI and containerd APIs that ephem
// sends and reads, encoded by hand on the wire format: the generated Go
// packages of those APIs import gRPC, whose package initialisation alone
// costs every ephem start (even `ephem version`) about 3.5 ms. Only the
// fields ephem reads are decoded; every other field is skipped, as
// protobuf does with unknown fields. pbwire_internal_test.go checks each
// message against the generated code.

// Protobuf wire types.
const (
	pbVarint = 0
	pbI64    = 1
	pbLen    = 2
	pbI32    = 5
)

// errPBMalformed says a message does not follow the wire format.
var errPBMalformed = errors.New("malformed protobuf message")

// pbTag appends field num's key of wire type typ.
func pbTag(b []byte, num, typ int) []byte {
	return binary.AppendUvarint(b, uint64(num)<<3|uint64(typ))
}

// pbBytes appends field num holding v (a string, bytes or an embedded
// message), even when v is empty: an empty embedded message is present.
func pbBytes(b []byte, num int, v []byte) []byte {
	b = pbTag(b, num, pbLen)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// pbString appends string field num, unless it is empty (proto3).
func pbString(b []byte, num int, s string) []byte {
	if s == "" {
		return b
	}
	return pbBytes(b, num, []byte(s))
}

// pbUint appends varint field num, unless it is zero (proto3).
func pbUint(b []byte, num int, v uint64) []byte {
	if v == 0 {
		return b
	}
	return binary.AppendUvarint(pbTag(b, num, pbVarint), v)
}

// pbField is one field of a message: its number, and its value as a
// varint or as the bytes of a length-delimited field. Fixed-size fields
// are skipped (none that ephem reads is one).
type pbField struct {
	num int
	typ int
	n   uint64
	b   []byte
}

// str is the field's value as a string.
func (f pbField) str() string { return string(f.b) }

// pbRange calls fn for each field of msg, in order, and stops at fn's
// first error.
func pbRange(msg []byte, fn func(f pbField) error) error {
	for len(msg) > 0 {
		key, n := binary.Uvarint(msg)
		if n <= 0 || key>>3 == 0 || key>>3 > 1<<29-1 {
			return errPBMalformed
		}
		msg = msg[n:]
		f := pbField{num: int(key >> 3), typ: int(key & 7)}
		switch f.typ {
		case pbVarint:
			if f.n, n = binary.Uvarint(msg); n <= 0 {
				return errPBMalformed
			}
			msg = msg[n:]
		case pbLen:
			l, n := binary.Uvarint(msg)
			if n <= 0 || l > uint64(len(msg)-n) {
				return errPBMalformed
			}
			f.b, msg = msg[n:n+int(l)], msg[n+int(l):]
		case pbI64, pbI32:
			size := 8
			if f.typ == pbI32 {
				size = 4
			}
			if len(msg) < size {
				return errPBMalformed
			}
			msg = msg[size:]
			continue
		default: // groups, deprecated, are in none of these APIs
			return fmt.Errorf("%w: wire type %d", errPBMalformed, f.typ)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// pbFields decodes msg's length-delimited and varint fields by number:
// onto a string, a uint64, a map<string, string> (entries key 1, value
// 2), a []string (repeated string), or a func that decodes an embedded
// message. Fields of any other number, or of a wire type other than the
// one the destination expects, are skipped.
func pbFields(msg []byte, dst map[int]any) error {
	return pbRange(msg, func(f pbField) error {
		switch d := dst[f.num].(type) {
		case *string:
			if f.typ == pbLen {
				*d = f.str()
			}
		case *uint64:
			if f.typ == pbVarint {
				*d = f.n
			}
		case *[]string:
			if f.typ == pbLen {
				*d = append(*d, f.str())
			}
		case *map[string]string:
			if f.typ != pbLen {
				return nil
			}
			var k, v string
			if err := pbFields(f.b, map[int]any{1: &k, 2: &v}); err != nil {
				return err
			}
			if *d == nil {
				*d = map[string]string{}
			}
			(*d)[k] = v
		case func([]byte) error:
			if f.typ == pbLen {
				return d(f.b)
			}
		}
		return nil
	})
}
