package embedded

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plexus-router/plexus/channels"
	"github.com/plexus-router/plexus/channels/registry"
	"golang.org/x/sys/unix"
)

// Files of an embedded store's data directory.
const (
	journalFile = "config.journal" // JSON lines: header, then one entry per mutation
	cursorsFile = "cursors.json"   // drain cursors, rewritten at most every second
	lockFile    = "LOCK"           // flock'ed while a process uses the directory

	journalVersion = 1
)

// Tunables (variables so tests can shorten them).
var (
	cursorFlushInterval  = time.Second
	sessionSweepInterval = time.Minute
	compactMinSize       = int64(256 << 10) // never compact a journal smaller than this at run time
)

// Store is the Store of a single node: configuration lives in a
// Registry and is persisted under a data directory.
//
// Every mutation is appended to a journal (one JSON line per mutation) and
// fsync'ed before the method returns; the journal is replayed on open. When
// the journal has grown past four times the size of a snapshot of the
// current state it is rewritten as that snapshot (temporary file, fsync,
// rename); the same happens on open when it holds anything superseded.
//
// Drain cursors change after every acknowledged delivery, so they are kept
// in memory and written to a separate file at most once per second and on
// Close. After a crash a drain may therefore resend up to about one second
// of messages its destination already acknowledged (delivery is
// at-least-once anyway).
//
// Sessions are journaled with their expiry; expired ones are dropped on open
// and by a periodic sweep.
//
// A data directory is locked (flock) while open: a second process (or a
// second OpenStore in the same process) gets an error.
type Store struct {
	dir  string
	reg  *registry.Registry
	lock *os.File

	mu           sync.Mutex // serializes mutations, journal writes and compaction
	journal      *os.File   // opened O_APPEND
	journalSize  int64
	snapshotSize int64 // size of the journal right after the last compaction
	compactMin   int64
	failed       error // set when the journal is in an unknown state: no more mutations
	closed       bool

	cursorVer  atomic.Uint64 // bumped when a cursor changes
	flushMu    sync.Mutex    // serializes cursor file writes
	flushedVer uint64
	// onDisk holds the drains whose cursor file entry exists (guarded by
	// flushMu): a drain's first cursor is written at once, so a drain
	// never restarts without a position (later ones may be up to
	// flushEvery behind: re-sent, never skipped).
	onDisk map[int64]bool

	flushEvery time.Duration // cursorFlushInterval at open
	sweepEvery time.Duration // sessionSweepInterval at open

	ready atomic.Bool
	done  chan struct{}
	wg    sync.WaitGroup
}

var _ channels.Store = (*Store)(nil)

// journalEntry is one line of the journal. Op says which field is set.
type journalEntry struct {
	Op           string            `json:"op"`
	Version      int               `json:"version,omitempty"`       // header
	Channel      *channels.Channel `json:"channel,omitempty"`       // channel
	Token        *channels.Token   `json:"token,omitempty"`         // token
	Drain        *channels.Drain   `json:"drain,omitempty"`         // drain
	Cred         *channels.Cred    `json:"cred,omitempty"`          // cred
	Session      *channels.Session `json:"session,omitempty"`       // session
	ID           string            `json:"id,omitempty"`            // del_channel, del_token, del_cred, del_session
	DrainID      int64             `json:"drain_id,omitempty"`      // del_drain
	ChannelIndex int64             `json:"channel_index,omitempty"` // counters
	DrainIndex   int64             `json:"drain_index,omitempty"`   // counters
	Ops          []journalEntry    `json:"ops,omitempty"`           // batch: applied together
}

// Journal ops.
const (
	opHeader     = "header"
	opCounters   = "counters"
	opChannel    = "channel"
	opDelChannel = "del_channel"
	opToken      = "token"
	opDelToken   = "del_token"
	opDrain      = "drain"
	opDelDrain   = "del_drain"
	opCred       = "cred"
	opDelCred    = "del_cred"
	opSession    = "session"
	opDelSession = "del_session"
	opBatch      = "batch"
)

type cursorsDoc struct {
	Version int                       `json:"version"`
	Cursors map[int64]channels.Cursor `json:"cursors"`
}

// OpenStore opens (creating it if needed) the data directory dir, locks it,
// and loads its configuration.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, channels.Errorf(channels.CodeInternal, "create data directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, channels.Errorf(channels.CodeInternal, "open lock file: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, channels.Errorf(channels.CodeUnavailable, "data directory %s is in use by another process (lock %s held)", dir, lockFile)
		}
		return nil, channels.Errorf(channels.CodeInternal, "lock data directory %s: %w", dir, err)
	}
	s := &Store{
		dir:        dir,
		reg:        registry.New(),
		lock:       lock,
		compactMin: compactMinSize,
		flushEvery: cursorFlushInterval,
		sweepEvery: sessionSweepInterval,
		done:       make(chan struct{}),
	}
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	s.ready.Store(true)
	s.wg.Add(1)
	go s.background()
	return s, nil
}

// load replays the journal and the cursors file into s.reg and opens the
// journal for appending, compacting it first when it holds superseded
// records or a torn tail.
func (s *Store) load() error {
	path := filepath.Join(s.dir, journalFile)
	s.reg.BeginBulk()
	size, good, err := replayJournal(path, s.reg)
	if err != nil {
		s.reg.EndBulk()
		return err
	}
	now := time.Now()
	s.reg.SweepSessions(now)
	s.loadCursors()
	s.reg.EndBulk()

	snap, err := writeSnapshot(io.Discard, s.reg.State(now))
	if err != nil {
		return channels.Errorf(channels.CodeInternal, "encode snapshot: %w", err)
	}
	if size < 0 || good < size || size > snap {
		return s.compact()
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return channels.Errorf(channels.CodeInternal, "open journal: %w", err)
	}
	s.journal, s.journalSize, s.snapshotSize = f, size, size
	return nil
}

// replayJournal applies the journal at path to reg. It returns the file size
// (-1 when there is no journal) and the length of its valid prefix: an
// unparseable or unterminated last line is a torn write and is ignored; an
// unparseable line followed by others is corruption and an error.
func replayJournal(path string, reg *registry.Registry) (size, good int64, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return -1, 0, nil
	}
	if err != nil {
		return 0, 0, channels.Errorf(channels.CodeInternal, "open journal: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, channels.Errorf(channels.CodeInternal, "stat journal: %w", err)
	}
	size = st.Size()
	br := bufio.NewReaderSize(f, 64<<10)
	var torn bool
	for lineNo := 1; ; lineNo++ {
		line, rerr := br.ReadBytes('\n')
		if len(line) == 0 && rerr == io.EOF {
			break
		}
		if rerr != nil && rerr != io.EOF {
			return 0, 0, channels.Errorf(channels.CodeInternal, "read journal: %w", rerr)
		}
		if torn {
			// A bad line with more after it: not a torn tail.
			return 0, 0, channels.Errorf(channels.CodeInternal, "journal %s: corrupt line %d", path, lineNo-1)
		}
		var e journalEntry
		if rerr == io.EOF || json.Unmarshal(line, &e) != nil {
			torn = true
			continue
		}
		if lineNo == 1 {
			if e.Op != opHeader || e.Version != journalVersion {
				return 0, 0, channels.Errorf(channels.CodeInternal, "journal %s: not a version %d journal", path, journalVersion)
			}
		} else if err := applyEntry(reg, e); err != nil {
			return 0, 0, channels.Errorf(channels.CodeInternal, "journal %s line %d: %w", path, lineNo, err)
		}
		good += int64(len(line))
	}
	return size, good, nil
}

// applyEntry applies one journal entry to reg.
func applyEntry(reg *registry.Registry, e journalEntry) error {
	switch e.Op {
	case opCounters:
		reg.SetChannelIndex(e.ChannelIndex)
		reg.SetDrainIndex(e.DrainIndex)
	case opChannel:
		if e.Channel == nil {
			return errors.New("channel entry without channel")
		}
		reg.PutChannel(*e.Channel)
	case opDelChannel:
		reg.DeleteChannel(e.ID)
	case opToken:
		if e.Token == nil {
			return errors.New("token entry without token")
		}
		reg.PutToken(*e.Token)
	case opDelToken:
		reg.DeleteToken(e.ID)
	case opDrain:
		if e.Drain == nil {
			return errors.New("drain entry without drain")
		}
		reg.PutDrain(*e.Drain)
	case opDelDrain:
		reg.DeleteDrain(e.DrainID)
	case opCred:
		if e.Cred == nil {
			return errors.New("cred entry without cred")
		}
		reg.PutCred(*e.Cred)
	case opDelCred:
		reg.DeleteCred(e.ID)
	case opSession:
		if e.Session == nil {
			return errors.New("session entry without session")
		}
		reg.PutSession(*e.Session)
	case opDelSession:
		reg.DeleteSession(e.ID)
	case opBatch:
		// Consecutive token puts are applied together: one route snapshot.
		var toks []channels.Token
		for _, op := range e.Ops {
			if op.Op == opToken && op.Token != nil {
				toks = append(toks, *op.Token)
				continue
			}
			reg.PutTokens(toks...)
			toks = toks[:0]
			if err := applyEntry(reg, op); err != nil {
				return err
			}
		}
		reg.PutTokens(toks...)
	default:
		return fmt.Errorf("unknown op %q", e.Op)
	}
	return nil
}

// writeSnapshot writes st as a journal (header, counters, then one entry
// per record) and returns its size.
func writeSnapshot(w io.Writer, st registry.State) (int64, error) {
	cw := &storeCountingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	enc := json.NewEncoder(bw) // Encode adds the newline
	enc.SetEscapeHTML(false)
	put := func(e journalEntry) {
		if err := enc.Encode(e); err != nil && cw.err == nil {
			cw.err = err
		}
	}
	put(journalEntry{Op: opHeader, Version: journalVersion})
	put(journalEntry{Op: opCounters, ChannelIndex: st.ChannelIndex, DrainIndex: st.DrainIndex})
	for i := range st.Channels {
		put(journalEntry{Op: opChannel, Channel: &st.Channels[i]})
	}
	for i := range st.Tokens {
		put(journalEntry{Op: opToken, Token: &st.Tokens[i]})
	}
	for i := range st.Drains {
		put(journalEntry{Op: opDrain, Drain: &st.Drains[i]})
	}
	for i := range st.Creds {
		put(journalEntry{Op: opCred, Cred: &st.Creds[i]})
	}
	for i := range st.Sessions {
		put(journalEntry{Op: opSession, Session: &st.Sessions[i]})
	}
	if err := bw.Flush(); err != nil && cw.err == nil {
		cw.err = err
	}
	return cw.n, cw.err
}

type storeCountingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *storeCountingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// compact rewrites the journal as a snapshot of the current state and
// reopens it for appending. Caller holds s.mu (or is load).
func (s *Store) compact() error {
	path := filepath.Join(s.dir, journalFile)
	n, err := replaceFile(s.dir, journalFile, func(w io.Writer) error {
		_, err := writeSnapshot(w, s.reg.State(time.Now()))
		return err
	})
	if err != nil {
		return channels.Errorf(channels.CodeInternal, "compact journal: %w", err)
	}
	if s.journal != nil {
		s.journal.Close() // the file was replaced: never write to it again
		s.journal = nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.failed = channels.Errorf(channels.CodeUnavailable, "journal unusable: reopen after compaction: %w", err)
		return s.failed
	}
	s.journal, s.journalSize, s.snapshotSize = f, n, n
	return nil
}

// loadCursors reads the cursors file into s.reg (cursors of unknown drains
// are dropped). A missing or unreadable file means no stored cursors: the
// file is only ever replaced whole, so it is unreadable only if damaged.
func (s *Store) loadCursors() {
	b, err := os.ReadFile(filepath.Join(s.dir, cursorsFile))
	if err != nil {
		return
	}
	var doc cursorsDoc
	if json.Unmarshal(b, &doc) != nil {
		return
	}
	s.onDisk = make(map[int64]bool, len(doc.Cursors))
	for id, c := range doc.Cursors {
		s.reg.SetDrainCursor(id, c)
		s.onDisk[id] = true
	}
}

// flushCursors writes the cursors file if a cursor changed since the last
// write.
func (s *Store) flushCursors() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	ver := s.cursorVer.Load()
	if ver == s.flushedVer {
		return nil
	}
	doc := cursorsDoc{Version: 1, Cursors: s.reg.Cursors()}
	_, err := replaceFile(s.dir, cursorsFile, func(w io.Writer) error {
		return json.NewEncoder(w).Encode(doc)
	})
	if err != nil {
		return channels.Errorf(channels.CodeInternal, "write drain cursors: %w", err)
	}
	s.flushedVer = ver
	s.onDisk = make(map[int64]bool, len(doc.Cursors))
	for id := range doc.Cursors {
		s.onDisk[id] = true
	}
	return nil
}

// background flushes cursors and sweeps expired sessions until Close.
func (s *Store) background() {
	defer s.wg.Done()
	tick := time.NewTicker(s.flushEvery)
	defer tick.Stop()
	lastSweep := time.Now()
	for {
		select {
		case <-s.done:
			return
		case now := <-tick.C:
			_ = s.flushCursors() // retried next tick; Close reports a final failure
			if now.Sub(lastSweep) >= s.sweepEvery {
				s.reg.SweepSessions(time.Now())
				lastSweep = now
			}
		}
	}
}

// begin checks ctx and the store state and locks s.mu for a mutation. On
// success the caller must unlock s.mu.
func (s *Store) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return channels.Errorf(channels.CodeUnavailable, "%w", err)
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return channels.ErrClosed
	case s.failed != nil:
		err := s.failed
		s.mu.Unlock()
		return err
	}
	return nil
}

// commit makes ops durable (one journal line, fsync'ed) and then applies
// them to the registry. Caller holds s.mu.
func (s *Store) commit(ops ...journalEntry) error {
	e := ops[0]
	if len(ops) > 1 {
		e = journalEntry{Op: opBatch, Ops: ops}
	}
	line, err := json.Marshal(e)
	if err != nil {
		return channels.Errorf(channels.CodeInternal, "encode journal entry: %w", err)
	}
	line = append(line, '\n')
	if _, err := s.journal.Write(line); err != nil {
		if terr := s.journal.Truncate(s.journalSize); terr != nil {
			s.failed = channels.Errorf(channels.CodeUnavailable, "journal unusable after failed write: %w", terr)
		}
		return channels.Errorf(channels.CodeInternal, "write journal: %w", err)
	}
	if err := s.journal.Sync(); err != nil {
		// After a failed fsync the file's state is unknown: stop writing.
		s.failed = channels.Errorf(channels.CodeUnavailable, "journal unusable after failed fsync: %w", err)
		return channels.Errorf(channels.CodeInternal, "sync journal: %w", err)
	}
	s.journalSize += int64(len(line))
	if err := applyEntry(s.reg, e); err != nil {
		return channels.Errorf(channels.CodeInternal, "apply journal entry: %w", err)
	}
	if s.journalSize > s.compactMin && s.journalSize > 4*s.snapshotSize {
		// A failed compaction leaves the old journal in place; the
		// mutation itself is durable, so it still succeeds.
		_ = s.compact()
	}
	return nil
}

// newTokenID returns a token id unused in the registry and in pending.
func (s *Store) newTokenID(pending []channels.Token) (string, error) {
	for range 10 {
		id := channels.NewToken()
		if _, ok := s.reg.Token(id); ok {
			continue
		}
		if slices.ContainsFunc(pending, func(t channels.Token) bool { return t.ID == id }) {
			continue
		}
		return id, nil
	}
	return "", channels.Errorf(channels.CodeInternal, "could not allocate a unique token")
}

// newTokens returns one new token per unique name, in order of first
// appearance.
func (s *Store) newTokens(channelID string, names []string) ([]channels.Token, error) {
	var ts []channels.Token
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		id, err := s.newTokenID(ts)
		if err != nil {
			return nil, err
		}
		ts = append(ts, channels.Token{ID: id, ChannelID: channelID, Name: name})
	}
	return ts, nil
}

func tokenOps(ts []channels.Token) []journalEntry {
	ops := make([]journalEntry, len(ts))
	for i := range ts {
		ops[i] = journalEntry{Op: opToken, Token: &ts[i]}
	}
	return ops
}

// CreateChannel implements Store. Ids come from a persisted counter and are
// never reused; an id already taken (by a v3 channel named like a number,
// or tokens or drains made for a channel that did not exist) is skipped.
func (s *Store) CreateChannel(ctx context.Context, name string, tokenNames []string) (channels.Channel, []channels.Token, error) {
	if err := s.begin(ctx); err != nil {
		return channels.Channel{}, nil, err
	}
	defer s.mu.Unlock()
	n := s.reg.ChannelIndex()
	var id string
	for {
		n++
		id = strconv.FormatInt(n, 10)
		if !s.reg.ChannelInUse(id) {
			break
		}
	}
	ch := channels.Channel{ID: id, Name: name}
	ts, err := s.newTokens(id, tokenNames)
	if err != nil {
		return channels.Channel{}, nil, err
	}
	ops := append([]journalEntry{
		{Op: opCounters, ChannelIndex: n},
		{Op: opChannel, Channel: &ch},
	}, tokenOps(ts)...)
	if err := s.commit(ops...); err != nil {
		return channels.Channel{}, nil, err
	}
	channels.SortTokens(ts)
	return ch, ts, nil
}

// PutChannel implements Store. With setTokens, tokens of the channel whose
// name is listed are kept (all of them if several share a name).
func (s *Store) PutChannel(ctx context.Context, id string, tokenNames []string, setTokens bool) (channels.Channel, []channels.Token, bool, error) {
	if id == "" {
		return channels.Channel{}, nil, false, channels.Errorf(channels.CodeInvalid, "channel id is empty")
	}
	if err := s.begin(ctx); err != nil {
		return channels.Channel{}, nil, false, err
	}
	defer s.mu.Unlock()
	ch, exists := s.reg.Channel(id)
	var ops []journalEntry
	if !exists {
		ch = channels.Channel{ID: id}
		ops = append(ops, journalEntry{Op: opChannel, Channel: &ch})
	}
	if setTokens {
		want := map[string]bool{}
		for _, name := range tokenNames {
			want[name] = true
		}
		have := map[string]bool{}
		for _, t := range s.reg.ChannelTokens(id) {
			if want[t.Name] {
				have[t.Name] = true
			} else {
				ops = append(ops, journalEntry{Op: opDelToken, ID: t.ID})
			}
		}
		var names []string
		for _, name := range tokenNames {
			if !have[name] {
				names = append(names, name)
			}
		}
		ts, err := s.newTokens(id, names)
		if err != nil {
			return channels.Channel{}, nil, false, err
		}
		ops = append(ops, tokenOps(ts)...)
	}
	if len(ops) > 0 {
		if err := s.commit(ops...); err != nil {
			return channels.Channel{}, nil, false, err
		}
	}
	return ch, s.reg.ChannelTokens(id), !exists, nil
}

// SetChannelFlags replaces a channel's flags ("no_tail", "no_redis"), an
// operator action with no API in Logplex (ErrChannelNotFound).
func (s *Store) SetChannelFlags(ctx context.Context, id string, flags []string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	ch, ok := s.reg.Channel(id)
	if !ok {
		return channels.ErrChannelNotFound
	}
	ch.Flags = slices.Clone(flags)
	slices.Sort(ch.Flags)
	ch.Flags = slices.Compact(ch.Flags)
	return s.commit(journalEntry{Op: opChannel, Channel: &ch})
}

// SetChannelRetention implements Store.
func (s *Store) SetChannelRetention(ctx context.Context, id string, r *channels.ChannelRetention) (channels.Channel, error) {
	if err := s.begin(ctx); err != nil {
		return channels.Channel{}, err
	}
	defer s.mu.Unlock()
	ch, ok := s.reg.Channel(id)
	if !ok {
		return channels.Channel{}, channels.ErrChannelNotFound
	}
	if ch.Retention.Equal(r) {
		return ch, nil
	}
	ch.Retention = r.Clone()
	if err := s.commit(journalEntry{Op: opChannel, Channel: &ch}); err != nil {
		return channels.Channel{}, err
	}
	return ch, nil
}

// ChannelRetentions implements Store.
func (s *Store) ChannelRetentions(ctx context.Context) (map[string]channels.ChannelRetention, error) {
	return s.reg.ChannelRetentions(), nil
}

// Channel implements Store.
func (s *Store) Channel(ctx context.Context, id string) (channels.Channel, error) {
	ch, ok := s.reg.Channel(id)
	if !ok {
		return channels.Channel{}, channels.ErrChannelNotFound
	}
	return ch, nil
}

// DeleteChannel implements Store. Tokens and drains made for a channel id
// that has no channel record are deleted too; ErrChannelNotFound only when
// there was nothing at all.
func (s *Store) DeleteChannel(ctx context.Context, id string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if !s.reg.ChannelInUse(id) {
		return channels.ErrChannelNotFound
	}
	if err := s.commit(journalEntry{Op: opDelChannel, ID: id}); err != nil {
		return err
	}
	s.cursorVer.Add(1)
	return nil
}

// CreateToken implements Store.
func (s *Store) CreateToken(ctx context.Context, channelID, name string) (channels.Token, error) {
	if channelID == "" {
		return channels.Token{}, channels.Errorf(channels.CodeInvalid, "channel id is empty")
	}
	if err := s.begin(ctx); err != nil {
		return channels.Token{}, err
	}
	defer s.mu.Unlock()
	id, err := s.newTokenID(nil)
	if err != nil {
		return channels.Token{}, err
	}
	t := channels.Token{ID: id, ChannelID: channelID, Name: name}
	if err := s.commit(journalEntry{Op: opToken, Token: &t}); err != nil {
		return channels.Token{}, err
	}
	return t, nil
}

// ChannelTokens implements Store. Tokens made for a channel id without a
// channel record are listed too; no error for an unknown channel.
func (s *Store) ChannelTokens(ctx context.Context, channelID string) ([]channels.Token, error) {
	return s.reg.ChannelTokens(channelID), nil
}

// ReserveDrain implements Store.
func (s *Store) ReserveDrain(ctx context.Context, channelID string) (channels.Drain, error) {
	if channelID == "" {
		return channels.Drain{}, channels.Errorf(channels.CodeInvalid, "channel id is empty")
	}
	if err := s.begin(ctx); err != nil {
		return channels.Drain{}, err
	}
	defer s.mu.Unlock()
	d := channels.Drain{ID: s.reg.DrainIndex() + 1, ChannelID: channelID, Token: channels.NewDrainToken()}
	if err := s.commit(journalEntry{Op: opDrain, Drain: &d}); err != nil {
		return channels.Drain{}, err
	}
	return d, nil
}

// CreateDrain implements Store. Checks, in order: the channel exists, the
// maximum, a duplicate URL; no id is used up when one fails.
func (s *Store) CreateDrain(ctx context.Context, channelID, url string, maxDrains int) (channels.Drain, error) {
	if url == "" {
		return channels.Drain{}, channels.Errorf(channels.CodeInvalid, "drain URL is empty")
	}
	if err := s.begin(ctx); err != nil {
		return channels.Drain{}, err
	}
	defer s.mu.Unlock()
	if _, ok := s.reg.Channel(channelID); !ok {
		return channels.Drain{}, channels.ErrChannelNotFound
	}
	if maxDrains > 0 && s.reg.DrainsWithURL(channelID) >= maxDrains {
		return channels.Drain{}, channels.ErrTooManyDrains
	}
	if s.reg.DrainURLTaken(channelID, url, 0) {
		return channels.Drain{}, channels.ErrDrainExists
	}
	d := channels.Drain{ID: s.reg.DrainIndex() + 1, ChannelID: channelID, Token: channels.NewDrainToken(), URL: url}
	if err := s.commit(journalEntry{Op: opDrain, Drain: &d}); err != nil {
		return channels.Drain{}, err
	}
	return d, nil
}

// SetDrainURL implements Store. The maximum is only checked when the drain
// had no URL yet (changing a URL does not add a drain with a URL).
func (s *Store) SetDrainURL(ctx context.Context, channelID string, drainID int64, url string, maxDrains int) (channels.Drain, error) {
	if url == "" {
		return channels.Drain{}, channels.Errorf(channels.CodeInvalid, "drain URL is empty")
	}
	if err := s.begin(ctx); err != nil {
		return channels.Drain{}, err
	}
	defer s.mu.Unlock()
	d, ok := s.reg.Drain(drainID)
	if !ok || d.ChannelID != channelID {
		return channels.Drain{}, channels.ErrDrainNotFound
	}
	if d.URL == url {
		return d, nil
	}
	if d.URL == "" && maxDrains > 0 && s.reg.DrainsWithURL(channelID) >= maxDrains {
		return channels.Drain{}, channels.ErrTooManyDrains
	}
	if s.reg.DrainURLTaken(channelID, url, drainID) {
		return channels.Drain{}, channels.ErrDrainExists
	}
	d.URL = url
	if err := s.commit(journalEntry{Op: opDrain, Drain: &d}); err != nil {
		return channels.Drain{}, err
	}
	return d, nil
}

// SetDrainOptions implements Store.
func (s *Store) SetDrainOptions(ctx context.Context, channelID string, drainID int64, o channels.DrainOptions) (channels.Drain, error) {
	if err := s.begin(ctx); err != nil {
		return channels.Drain{}, err
	}
	defer s.mu.Unlock()
	d, ok := s.reg.Drain(drainID)
	if !ok || d.ChannelID != channelID {
		return channels.Drain{}, channels.ErrDrainNotFound
	}
	if d.DrainOptions == o {
		return d, nil
	}
	d.DrainOptions = o
	if err := s.commit(journalEntry{Op: opDrain, Drain: &d}); err != nil {
		return channels.Drain{}, err
	}
	return d, nil
}

// DeleteDrain implements Store.
func (s *Store) DeleteDrain(ctx context.Context, channelID string, drainID int64) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	d, ok := s.reg.Drain(drainID)
	if !ok || d.ChannelID != channelID {
		return channels.ErrDrainNotFound
	}
	if err := s.commit(journalEntry{Op: opDelDrain, DrainID: drainID}); err != nil {
		return err
	}
	s.cursorVer.Add(1)
	return nil
}

// Drain implements Store.
func (s *Store) Drain(ctx context.Context, drainID int64) (channels.Drain, error) {
	d, ok := s.reg.Drain(drainID)
	if !ok {
		return channels.Drain{}, channels.ErrDrainNotFound
	}
	return d, nil
}

// ChannelDrains implements Store (no error for an unknown channel).
func (s *Store) ChannelDrains(ctx context.Context, channelID string) ([]channels.Drain, error) {
	return s.reg.ChannelDrains(channelID), nil
}

// Drains implements Store.
func (s *Store) Drains(ctx context.Context) ([]channels.Drain, error) {
	return s.reg.Drains(), nil
}

// DrainCursor implements Store.
func (s *Store) DrainCursor(ctx context.Context, drainID int64) (channels.Cursor, error) {
	c, _ := s.reg.DrainCursor(drainID)
	return c, nil
}

// SetDrainCursor implements Store. The cursor is in memory at once and on
// disk within about a second (see Store). A cursor for a drain that
// no longer exists is ignored.
func (s *Store) SetDrainCursor(ctx context.Context, drainID int64, c channels.Cursor) error {
	if !s.ready.Load() {
		return channels.ErrClosed
	}
	if !s.reg.SetDrainCursor(drainID, c) {
		return nil
	}
	s.cursorVer.Add(1)
	s.flushMu.Lock()
	first := !s.onDisk[drainID]
	s.flushMu.Unlock()
	if first {
		return s.flushCursors()
	}
	return nil
}

// CreateCred implements Store.
func (s *Store) CreateCred(ctx context.Context, name string, fullAPI, anyChannel bool) (channels.Cred, error) {
	if err := s.begin(ctx); err != nil {
		return channels.Cred{}, err
	}
	defer s.mu.Unlock()
	c := channels.Cred{Pass: channels.NewCredPass(), Name: name, FullAPI: fullAPI, AnyChannel: anyChannel}
	for range 10 {
		if id := channels.NewCredID(); !s.credExists(id) {
			c.ID = id
			break
		}
	}
	if c.ID == "" {
		return channels.Cred{}, channels.Errorf(channels.CodeInternal, "could not allocate a unique credential id")
	}
	if err := s.commit(journalEntry{Op: opCred, Cred: &c}); err != nil {
		return channels.Cred{}, err
	}
	return c, nil
}

func (s *Store) credExists(id string) bool {
	_, ok := s.reg.LookupCred(id)
	return ok
}

// Creds implements Store.
func (s *Store) Creds(ctx context.Context) ([]channels.Cred, error) {
	return s.reg.Creds(), nil
}

// DeleteCred implements Store.
func (s *Store) DeleteCred(ctx context.Context, id string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if !s.credExists(id) {
		return channels.ErrCredNotFound
	}
	return s.commit(journalEntry{Op: opDelCred, ID: id})
}

// CreateSession implements Store.
func (s *Store) CreateSession(ctx context.Context, body []byte, ttl time.Duration) (channels.Session, error) {
	if ttl <= 0 {
		return channels.Session{}, channels.Errorf(channels.CodeInvalid, "session ttl must be positive")
	}
	if err := s.begin(ctx); err != nil {
		return channels.Session{}, err
	}
	defer s.mu.Unlock()
	sess := channels.Session{ID: channels.NewSessionID(), Body: bytes.Clone(body), Expires: time.Now().Add(ttl).Round(0)}
	if sess.Body == nil {
		sess.Body = []byte{}
	}
	if err := s.commit(journalEntry{Op: opSession, Session: &sess}); err != nil {
		return channels.Session{}, err
	}
	return sess, nil
}

// Session implements Store.
func (s *Store) Session(ctx context.Context, id string) (channels.Session, error) {
	sess, ok := s.reg.Session(id, time.Now())
	if !ok {
		return channels.Session{}, channels.ErrSessionNotFound
	}
	return registry.CloneSession(sess), nil
}

// LookupToken implements Store.
func (s *Store) LookupToken(token []byte) (channels.Route, bool) { return s.reg.LookupToken(token) }

// LookupCred implements Store.
func (s *Store) LookupCred(id string) (channels.Cred, bool) { return s.reg.LookupCred(id) }

// Changes implements Store.
func (s *Store) Changes() <-chan struct{} { return s.reg.Changes() }

// Ready implements Store: true from OpenStore until Close.
func (s *Store) Ready() bool { return s.ready.Load() }

// WaitReady returns at once: the embedded store is loaded when OpenStore
// returns.
func (s *Store) WaitReady(ctx context.Context) error {
	select {
	case <-s.done:
		return channels.ErrClosed
	default:
		return nil
	}
}

// Registry returns the in-memory model (read it; do not modify it: changes
// made there are not persisted).
func (s *Store) Registry() *registry.Registry { return s.reg }

// ChannelIDs lists the channels' ids, sorted (GET /v3/channels).
func (s *Store) ChannelIDs(context.Context) ([]string, error) { return s.reg.ChannelIDs(), nil }

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// Close flushes the drain cursors, closes the journal, ends every Changes
// subscription and releases the directory lock. Later mutations return
// ErrClosed; reads keep answering from memory. Closing twice is a no-op.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.ready.Store(false)
	close(s.done)
	s.mu.Unlock()
	s.wg.Wait()

	err := s.flushCursors()
	s.mu.Lock()
	if s.journal != nil {
		if cerr := s.journal.Close(); cerr != nil && err == nil {
			err = channels.Errorf(channels.CodeInternal, "close journal: %w", cerr)
		}
	}
	s.mu.Unlock()
	s.reg.Close()
	s.lock.Close() // releases the flock
	return err
}
