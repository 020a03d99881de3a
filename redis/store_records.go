package redis

import (
	"strconv"
	"strings"

	"github.com/plexus-router/plexus/channels"
)

// keyKind classifies a configuration key.
type keyKind int

const (
	kindOther keyKind = iota
	kindChannel
	kindToken
	kindDrain
	kindCred
)

// parseKey returns the kind of a configuration key and the id in it.
func parseKey(key string) (keyKind, string) {
	switch {
	case strings.HasPrefix(key, "ch:") && strings.HasSuffix(key, ":data") && len(key) > len("ch::data"):
		return kindChannel, key[3 : len(key)-5]
	case strings.HasPrefix(key, "tok:") && strings.HasSuffix(key, ":data") && len(key) > len("tok::data"):
		return kindToken, key[4 : len(key)-5]
	case strings.HasPrefix(key, "drain:") && strings.HasSuffix(key, ":data") && len(key) > len("drain::data"):
		id := key[6 : len(key)-5]
		if _, err := strconv.ParseInt(id, 10, 64); err == nil {
			return kindDrain, id
		}
	case strings.HasPrefix(key, "cred:") && len(key) > len("cred:") && !strings.Contains(key[5:], ":"):
		return kindCred, key[5:]
	}
	return kindOther, ""
}

// parseFlags splits channel flags as Logplex stores them: joined by ':'
// (set by operators in the ch:<id>:data hash).
func parseFlags(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ":") {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

func channelFromHash(id string, h map[string]string) channels.Channel {
	return channels.Channel{ID: id, Name: h["name"], Flags: parseFlags(h["flags"]), Retention: parseRetention(h["retention"]), RateLimit: parseRateLimit(h["rate_limit"])}
}

// parseRetention reads the "retention" field of ch:<id>:data: the JSON of
// a channels.ChannelRetention; empty or malformed means none.
func parseRetention(s string) *channels.ChannelRetention {
	if s == "" {
		return nil
	}
	r, err := channels.ParseChannelRetention([]byte(s))
	if err != nil {
		return nil
	}
	return r
}

func tokenFromHash(id string, h map[string]string) (channels.Token, bool) {
	ch := h["ch"]
	if ch == "" {
		return channels.Token{}, false
	}
	return channels.Token{ID: id, ChannelID: ch, Name: h["name"]}, true
}

func drainFromHash(id string, h map[string]string) (channels.Drain, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || h["ch"] == "" {
		return channels.Drain{}, false
	}
	d := channels.Drain{ID: n, ChannelID: h["ch"], Token: h["token"], URL: h["url"],
		DrainOptions: channels.DrainOptions{Filter: h["filter"], Format: h["format"]}}
	if d.URL == "" && h["host"] != "" {
		port, _ := strconv.Atoi(h["port"])
		d.URL = channels.LegacyDrainURL(h["host"], port)
	}
	return d, true
}

func credFromHash(id string, h map[string]string) (channels.Cred, bool) {
	if h["pass"] == "" {
		return channels.Cred{}, false
	}
	fa := h["full_api"]
	return channels.Cred{
		ID:         id,
		Pass:       h["pass"],
		Name:       h["name"],
		FullAPI:    fa == "1" || fa == "true",
		AnyChannel: h["channel"] == "any",
	}, true
}

// formatCursor stores a cursor as "<offset>:<epoch>", or
// "<offset>+<pending>:<epoch>" while a drain has a batch in flight.
func formatCursor(c channels.Cursor) string {
	s := strconv.FormatUint(c.Offset, 10)
	if c.Pending > 0 {
		s += "+" + strconv.FormatUint(c.Pending, 10)
	}
	return s + ":" + c.Epoch
}

func parseCursor(s string) (channels.Cursor, bool) {
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return channels.Cursor{}, false
	}
	pos, pendingText, hasPending := strings.Cut(s[:i], "+")
	off, err := strconv.ParseUint(pos, 10, 64)
	if err != nil {
		return channels.Cursor{}, false
	}
	c := channels.Cursor{Epoch: s[i+1:], Offset: off}
	if hasPending {
		if c.Pending, err = strconv.ParseUint(pendingText, 10, 64); err != nil {
			return channels.Cursor{}, false
		}
	}
	return c, true
}
