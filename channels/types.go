package channels

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Channel is a named log stream. Legacy (v1/v2) channels have decimal ids
// allocated by the store; v3 channels have ids chosen by the caller.
type Channel struct {
	ID    string   `json:"id"`
	Name  string   `json:"name,omitempty"`
	Flags []string `json:"flags,omitempty"` // "no_tail", "no_redis"; kept across v3 PUT
	// Retention is the channel's own retention (nil: none); kept across
	// v3 PUTs that do not name it.
	Retention *ChannelRetention `json:"retention,omitempty"`
	// RateLimit is the channel's own input limit (nil: the node's
	// default). Kept across v3 PUTs that do not set it.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
}

// HasFlag reports whether the channel carries flag f.
func (c Channel) HasFlag(f string) bool {
	for _, x := range c.Flags {
		if x == f {
			return true
		}
	}
	return false
}

// Token authorises writes to one channel. Its ID ("t.<uuid>") appears in
// incoming messages and is replaced by Name in what is stored ("cooking").
type Token struct {
	ID        string `json:"token"`
	ChannelID string `json:"channel_id"`
	Name      string `json:"name"`
}

// String redacts the secret part of the token so it is safe to log.
func (t Token) String() string { return Redact(t.ID) + "(" + t.Name + ")" }

// Route is what the hot path needs from a token: where its messages go and
// the name that replaces the token in the stored line.
type Route struct {
	ChannelID string
	Token     string // the token id, "t.<uuid>"
	Name      string
	// Limiter is the channel's rate limiter (nil: never limited), shared
	// by every route of the channel.
	Limiter *Limiter
}

// Drain is an endpoint that receives a channel's stream. A drain reserved
// without a destination has an empty URL and delivers nothing.
type Drain struct {
	ID        int64  `json:"id"`
	ChannelID string `json:"channel_id"`
	Token     string `json:"token"` // "d.<uuid>"
	URL       string `json:"url,omitempty"`
	DrainOptions
}

// DrainOptions shape what a drain receives: Filter is a filter expression
// (package syslog/filter; "" passes everything), Format how messages are
// framed ("" is Logplex's format, FormatRFC5424 the message as received).
type DrainOptions struct {
	Filter string `json:"filter,omitempty"`
	Format string `json:"format,omitempty"`
}

// Cred is an API credential (Logplex's cred:<id> hash).
type Cred struct {
	ID         string `json:"id"`   // 32 uppercase hex characters
	Pass       string `json:"pass"` // 64 uppercase hex characters
	Name       string `json:"name"`
	FullAPI    bool   `json:"full_api"`    // may use the management API
	AnyChannel bool   `json:"any_channel"` // may write logs to any channel through HTTP input
}

// String redacts the password.
func (c Cred) String() string { return c.ID + "(" + c.Name + ")" }

// Session is a stored request to read a channel (history and maybe tail).
// Body is the request JSON, kept verbatim as Logplex does.
type Session struct {
	ID      string    `json:"id"`
	Body    []byte    `json:"body"`
	Expires time.Time `json:"expires"`
}

// Cursor is a reader's position in a channel log: the next offset to read
// within a log epoch.
//
// Pending is used by drains only: the number of messages from Offset that
// form the batch in flight. A drain stores it before sending a batch (which
// also acknowledges the previous one), so that a worker taking the drain
// over — after a restart or on another node — first re-sends exactly that
// batch, under the same Logplex-Frame-Id. Log reads ignore it.
type Cursor struct {
	Epoch   string `json:"epoch"`
	Offset  uint64 `json:"offset"`
	Pending uint64 `json:"pending,omitempty"`
}

// NewToken returns a fresh token id "t.<uuid v4>".
func NewToken() string { return "t." + uuid.NewString() }

// NewDrainToken returns a fresh drain token "d.<uuid v4>".
func NewDrainToken() string { return "d." + uuid.NewString() }

// NewSessionID returns a fresh session id (a lowercase UUID v4, 36 characters).
func NewSessionID() string { return uuid.NewString() }

// NewCredID returns 32 uppercase hex characters (16 random bytes).
func NewCredID() string { return strings.ToUpper(RandomHex(16)) }

// NewCredPass returns 64 uppercase hex characters (32 random bytes).
func NewCredPass() string { return strings.ToUpper(RandomHex(32)) }

// RandomHex returns n random bytes (crypto/rand) as 2n lowercase hex
// characters: the one source of the random ids that have no format of
// their own (log epochs, writer and node ids).
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never returns an error (Go 1.24+: it crashes instead)
	return hex.EncodeToString(b)
}

// Redact shortens a secret for logs: "t.feff49f1-…".
func Redact(secret string) string {
	if len(secret) <= 10 {
		return "…"
	}
	return secret[:10] + "…"
}

// IsSessionID reports whether s is a session id: a UUID in its 36-character
// form (hex digits in either case).
func IsSessionID(s string) bool { return len(s) == 36 && uuid.Validate(s) == nil }

// SortTokens sorts tokens by name, then id.
func SortTokens(ts []Token) {
	slices.SortFunc(ts, func(a, b Token) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
