package channels

import (
	"context"
	"time"
)

// Store holds Plexus configuration. Both backends (embedded, Redis) implement
// it and pass the contract suite in package storetest.
//
// Mutations return *Error values (see Code). Lookup methods without a
// context read the in-memory copy and never block: they are for the hot path.
type Store interface {
	// CreateChannel allocates the next numeric channel id (v1/v2 API) and
	// creates a token for each name (duplicates collapse to one token).
	CreateChannel(ctx context.Context, name string, tokenNames []string) (Channel, []Token, error)
	// PutChannel creates channel id if needed (v3 PUT). When setTokens is
	// true the channel's token set becomes exactly tokenNames: existing
	// names keep their token, new names get one, others are deleted. Flags
	// of an existing channel are kept. created reports a new channel.
	PutChannel(ctx context.Context, id string, tokenNames []string, setTokens bool) (ch Channel, tokens []Token, created bool, err error)
	// SetChannelRateLimit sets a channel's own input rate limit (nil or
	// zero: the node's default applies) and returns the channel
	// (ErrChannelNotFound).
	SetChannelRateLimit(ctx context.Context, id string, rl *RateLimit) (Channel, error)
	// Channel returns a channel (ErrChannelNotFound).
	Channel(ctx context.Context, id string) (Channel, error)
	// SetChannelRetention sets a channel's own retention (nil removes it)
	// and returns the channel (ErrChannelNotFound). Like any channel
	// change it signals Changes, so the drain manager applies it to the log.
	SetChannelRetention(ctx context.Context, id string, r *ChannelRetention) (Channel, error)
	// ChannelRetentions returns the own retention of every channel that
	// has one, by channel id (from the in-memory copy).
	ChannelRetentions(ctx context.Context) (map[string]ChannelRetention, error)
	// DeleteChannel deletes a channel with its tokens and drains.
	DeleteChannel(ctx context.Context, id string) error

	// CreateToken adds a token to a channel; the channel need not exist
	// (Logplex's v1/v2 token endpoints do not check).
	CreateToken(ctx context.Context, channelID, name string) (Token, error)
	// ChannelTokens lists a channel's tokens sorted by name, then id.
	ChannelTokens(ctx context.Context, channelID string) ([]Token, error)

	// ReserveDrain allocates a drain id and token without a destination.
	// The channel need not exist (Logplex's legacy reserve does not check).
	ReserveDrain(ctx context.Context, channelID string) (Drain, error)
	// CreateDrain adds a drain with a destination to an existing channel:
	// ErrChannelNotFound, ErrTooManyDrains when the channel already has
	// maxDrains drains with a URL (0 = no limit), ErrDrainExists when the
	// channel has a drain with the same URL.
	CreateDrain(ctx context.Context, channelID, url string, maxDrains int) (Drain, error)
	// SetDrainURL sets or changes the destination of an existing drain of
	// that channel, keeping its id, token and stored cursor:
	// ErrDrainNotFound, ErrDrainExists (another drain of the channel has
	// that URL). maxDrains as for CreateDrain; 0 = not checked.
	SetDrainURL(ctx context.Context, channelID string, drainID int64, url string, maxDrains int) (Drain, error)
	// SetDrainOptions sets the filter and format of an existing drain of
	// that channel (ErrDrainNotFound), keeping everything else. The caller
	// validates them.
	SetDrainOptions(ctx context.Context, channelID string, drainID int64, o DrainOptions) (Drain, error)
	// DeleteDrain deletes a drain of that channel (ErrDrainNotFound).
	DeleteDrain(ctx context.Context, channelID string, drainID int64) error
	// Drain returns one drain (ErrDrainNotFound).
	Drain(ctx context.Context, drainID int64) (Drain, error)
	// ChannelDrains lists a channel's drains sorted by id.
	ChannelDrains(ctx context.Context, channelID string) ([]Drain, error)
	// Drains lists every drain sorted by id (for the drain manager).
	Drains(ctx context.Context) ([]Drain, error)

	// DrainCursor returns the stored position of a drain (zero Cursor and
	// no error when none was stored).
	DrainCursor(ctx context.Context, drainID int64) (Cursor, error)
	// SetDrainCursor stores the position of a drain after an acknowledged
	// delivery. Backends may batch these writes; Close flushes them.
	SetDrainCursor(ctx context.Context, drainID int64, c Cursor) error

	// CreateCred creates a credential with fresh id and password.
	CreateCred(ctx context.Context, name string, fullAPI, anyChannel bool) (Cred, error)
	// Creds lists credentials sorted by id.
	Creds(ctx context.Context) ([]Cred, error)
	// DeleteCred revokes a credential (ErrCredNotFound).
	DeleteCred(ctx context.Context, id string) error

	// CreateSession stores a session body for ttl and returns it with its id.
	CreateSession(ctx context.Context, body []byte, ttl time.Duration) (Session, error)
	// Session returns an unexpired session (ErrSessionNotFound).
	Session(ctx context.Context, id string) (Session, error)

	// LookupToken finds a token's route in memory. Safe for concurrent use
	// and free of allocation (token is only read during the call).
	LookupToken(token []byte) (Route, bool)
	// LookupCred finds a credential in memory.
	LookupCred(id string) (Cred, bool)
	// Changes returns a channel that receives a value (coalesced, never
	// blocking the store) after any change to channels, tokens or drains,
	// including changes made by other nodes. Each call returns a new
	// subscription; it is closed when the store is closed.
	Changes() <-chan struct{}
	// Ready reports whether the in-memory copy is loaded (healthchecks
	// answer booting until it is).
	Ready() bool
	// WaitReady blocks until the in-memory copy is loaded (nil), ctx is
	// done (a CodeUnavailable error) or the store is closed (ErrClosed).
	WaitReady(ctx context.Context) error

	Close() error
}
