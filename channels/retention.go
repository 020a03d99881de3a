package channels

import (
	"bytes"
	"encoding/json"
	"time"
)

// UnboundedCount is a Retention.Count that bounds nothing in practice
// (2^50 messages), exact in every backend (Lua numbers are doubles): it
// expresses "no bound at all", which the zero Retention (the default)
// cannot.
const UnboundedCount = 1 << 50

// ChannelRetention is a channel's own retention, set through the v3 API
// ("retention":{"messages":N,"bytes":B,"age":"24h"}) and stored with the
// channel. Each field that is given (non-nil) replaces that bound of the
// retention the channel would otherwise have (the log's default, or the
// drain extension for a channel with drains); 0 lifts the bound.
type ChannelRetention struct {
	Messages *int64
	Bytes    *int64
	Age      *time.Duration
}

type channelRetentionJSON struct {
	Messages *int64  `json:"messages,omitempty"`
	Bytes    *int64  `json:"bytes,omitempty"`
	Age      *string `json:"age,omitempty"`
}

// MarshalJSON writes {"messages":N,"bytes":B,"age":"24h0m0s"}, omitting
// the fields not given.
func (r ChannelRetention) MarshalJSON() ([]byte, error) {
	j := channelRetentionJSON{Messages: r.Messages, Bytes: r.Bytes}
	if r.Age != nil {
		s := r.Age.String()
		j.Age = &s
	}
	return json.Marshal(j)
}

// UnmarshalJSON is ParseChannelRetention into r.
func (r *ChannelRetention) UnmarshalJSON(b []byte) error {
	v, err := ParseChannelRetention(b)
	if err != nil {
		return err
	}
	if v == nil {
		*r = ChannelRetention{}
	} else {
		*r = *v
	}
	return nil
}

// ParseChannelRetention reads a retention object: messages and bytes
// non-negative integers, age a non-negative Go duration ("24h", "90m").
// JSON null gives nil. Errors are CodeInvalid with a message for clients.
func ParseChannelRetention(b []byte) (*ChannelRetention, error) {
	if string(bytes.TrimSpace(b)) == "null" {
		return nil, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || raw == nil {
		return nil, Errorf(CodeInvalid, "'retention' must be an object with messages, bytes and age")
	}
	var r ChannelRetention
	for k, v := range raw {
		if string(bytes.TrimSpace(v)) == "null" {
			continue
		}
		switch k {
		case "messages", "bytes":
			var n int64
			if err := json.Unmarshal(v, &n); err != nil || n < 0 {
				return nil, Errorf(CodeInvalid, "'retention.%s' must be a non-negative integer", k)
			}
			if k == "messages" {
				r.Messages = &n
			} else {
				r.Bytes = &n
			}
		case "age":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, Errorf(CodeInvalid, "'retention.age' must be a duration such as \"24h\"")
			}
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				return nil, Errorf(CodeInvalid, "'retention.age' must be a non-negative duration such as \"24h\"")
			}
			r.Age = &d
		default:
			return nil, Errorf(CodeInvalid, "'retention' has an unknown field %q (want messages, bytes, age)", k)
		}
	}
	return &r, nil
}

// Clone returns a deep copy (nil for nil).
func (r *ChannelRetention) Clone() *ChannelRetention {
	if r == nil {
		return nil
	}
	c := ChannelRetention{}
	if r.Messages != nil {
		v := *r.Messages
		c.Messages = &v
	}
	if r.Bytes != nil {
		v := *r.Bytes
		c.Bytes = &v
	}
	if r.Age != nil {
		v := *r.Age
		c.Age = &v
	}
	return &c
}

// Equal reports whether r and o give the same fields with the same values
// (nil and nil are equal).
func (r *ChannelRetention) Equal(o *ChannelRetention) bool {
	if r == nil || o == nil {
		return r == nil && o == nil
	}
	return eqPtr(r.Messages, o.Messages) && eqPtr(r.Bytes, o.Bytes) && eqPtr(r.Age, o.Age)
}

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// Apply returns base with the given fields of r replacing its bounds
// (Messages → Count, Bytes, Age); Keep is kept. A nil r returns base.
func (r *ChannelRetention) Apply(base Retention) Retention {
	if r == nil {
		return base
	}
	if r.Messages != nil {
		base.Count = int(min(*r.Messages, UnboundedCount))
	}
	if r.Bytes != nil {
		base.Bytes = *r.Bytes
	}
	if r.Age != nil {
		base.Age = *r.Age
	}
	return base
}
