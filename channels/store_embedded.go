package channels

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

// EmbeddedStore is the Store of a single node: configuration lives in a
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
type EmbeddedStore struct {
	dir  string
	reg  *Registry
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

	flushEvery time.Duration // cursorFlushInterval at open
	sweepEvery time.Duration // sessionSweepInterval at open

	ready atomic.Bool
	done  chan struct{}
	wg    sync.WaitGroup
}

var _ Store = (*EmbeddedStore)(nil)

// journalEntry is one line of the journal. Op says which field is set.
type journalEntry struct {
	Op           string         `json:"op"`
	Version      int            `json:"version,omitempty"`       // header
	Channel      *Channel       `json:"channel,omitempty"`       // channel
	Token        *Token         `json:"token,omitempty"`         // token
	Drain        *Drain         `json:"drain,omitempty"`         // drain
	Cred         *Cred          `json:"cred,omitempty"`          // cred
	Session      *Session       `json:"session,omitempty"`       // session
	ID           string         `json:"id,omitempty"`            // del_channel, del_token, del_cred, del_session
	DrainID      int64          `json:"drain_id,omitempty"`      // del_drain
	ChannelIndex int64          `json:"channel_index,omitempty"` // counters
	DrainIndex   int64          `json:"drain_index,omitempty"`   // counters
	Ops          []journalEntry `json:"ops,omitempty"`           // batch: applied together
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
	Version int              `json:"version"`
	Cursors map[int64]Cursor `json:"cursors"`
}

// OpenStore opens (creating it if needed) the data directory dir, locks it,
// and loads its configuration.
func OpenStore(dir string) (*EmbeddedStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, Errorf(CodeInternal, "create data directory: %v", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, Errorf(CodeInternal, "open lock file: %v", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, Errorf(CodeUnavailable, "data directory %s is in use by another process (lock %s held)", dir, lockFile)
		}
		return nil, Errorf(CodeInternal, "lock data directory %s: %v", dir, err)
	}
	s := &EmbeddedStore{
		dir:        dir,
		reg:        NewRegistry(),
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
func (s *EmbeddedStore) load() error {
	path := filepath.Join(s.dir, journalFile)
	s.reg.beginBulk()
	size, good, err := replayJournal(path, s.reg)
	if err != nil {
		s.reg.endBulk()
		return err
	}
	now := time.Now()
	s.reg.SweepSessions(now)
	s.loadCursors()
	s.reg.endBulk()

	snap, err := writeSnapshot(io.Discard, s.reg.State(now))
	if err != nil {
		return Errorf(CodeInternal, "encode snapshot: %v", err)
	}
	if size < 0 || good < size || size > snap {
		return s.compact()
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return Errorf(CodeInternal, "open journal: %v", err)
	}
	s.journal, s.journalSize, s.snapshotSize = f, size, size
	return nil
}

// replayJournal applies the journal at path to reg. It returns the file size
// (-1 when there is no journal) and the length of its valid prefix: an
// unparseable or unterminated last line is a torn write and is ignored; an
// unparseable line followed by others is corruption and an error.
func replayJournal(path string, reg *Registry) (size, good int64, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return -1, 0, nil
	}
	if err != nil {
		return 0, 0, Errorf(CodeInternal, "open journal: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, Errorf(CodeInternal, "stat journal: %v", err)
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
			return 0, 0, Errorf(CodeInternal, "read journal: %v", rerr)
		}
		if torn {
			// A bad line with more after it: not a torn tail.
			return 0, 0, Errorf(CodeInternal, "journal %s: corrupt line %d", path, lineNo-1)
		}
		var e journalEntry
		if rerr == io.EOF || json.Unmarshal(line, &e) != nil {
			torn = true
			continue
		}
		if lineNo == 1 {
			if e.Op != opHeader || e.Version != journalVersion {
				return 0, 0, Errorf(CodeInternal, "journal %s: not a version %d journal", path, journalVersion)
			}
		} else if err := applyEntry(reg, e); err != nil {
			return 0, 0, Errorf(CodeInternal, "journal %s line %d: %v", path, lineNo, err)
		}
		good += int64(len(line))
	}
	return size, good, nil
}

// applyEntry applies one journal entry to reg.
func applyEntry(reg *Registry, e journalEntry) error {
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
		var toks []Token
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
func writeSnapshot(w io.Writer, st RegistryState) (int64, error) {
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
func (s *EmbeddedStore) compact() error {
	path := filepath.Join(s.dir, journalFile)
	n, err := storeReplaceFile(s.dir, journalFile, func(w io.Writer) error {
		_, err := writeSnapshot(w, s.reg.State(time.Now()))
		return err
	})
	if err != nil {
		return Errorf(CodeInternal, "compact journal: %v", err)
	}
	if s.journal != nil {
		s.journal.Close() // the file was replaced: never write to it again
		s.journal = nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.failed = Errorf(CodeUnavailable, "journal unusable: reopen after compaction: %v", err)
		return s.failed
	}
	s.journal, s.journalSize, s.snapshotSize = f, n, n
	return nil
}

// storeReplaceFile writes dir/name through a temporary file, fsync and
// rename, then fsyncs dir. It returns the size written.
func storeReplaceFile(dir, name string, write func(io.Writer) error) (int64, error) {
	tmp, err := os.CreateTemp(dir, name+".*.tmp")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	cw := &storeCountingWriter{w: tmp}
	if err := write(cw); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return 0, err
	}
	return cw.n, storeSyncDir(dir)
}

func storeSyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// loadCursors reads the cursors file into s.reg (cursors of unknown drains
// are dropped). A missing or unreadable file means no stored cursors: the
// file is only ever replaced whole, so it is unreadable only if damaged.
func (s *EmbeddedStore) loadCursors() {
	b, err := os.ReadFile(filepath.Join(s.dir, cursorsFile))
	if err != nil {
		return
	}
	var doc cursorsDoc
	if json.Unmarshal(b, &doc) != nil {
		return
	}
	for id, c := range doc.Cursors {
		s.reg.SetDrainCursor(id, c)
	}
}

// flushCursors writes the cursors file if a cursor changed since the last
// write.
func (s *EmbeddedStore) flushCursors() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	ver := s.cursorVer.Load()
	if ver == s.flushedVer {
		return nil
	}
	doc := cursorsDoc{Version: 1, Cursors: s.reg.Cursors()}
	_, err := storeReplaceFile(s.dir, cursorsFile, func(w io.Writer) error {
		return json.NewEncoder(w).Encode(doc)
	})
	if err != nil {
		return Errorf(CodeInternal, "write drain cursors: %v", err)
	}
	s.flushedVer = ver
	return nil
}

// background flushes cursors and sweeps expired sessions until Close.
func (s *EmbeddedStore) background() {
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
func (s *EmbeddedStore) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return Errorf(CodeUnavailable, "%v", err)
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case s.failed != nil:
		err := s.failed
		s.mu.Unlock()
		return err
	}
	return nil
}

// commit makes ops durable (one journal line, fsync'ed) and then applies
// them to the registry. Caller holds s.mu.
func (s *EmbeddedStore) commit(ops ...journalEntry) error {
	e := ops[0]
	if len(ops) > 1 {
		e = journalEntry{Op: opBatch, Ops: ops}
	}
	line, err := json.Marshal(e)
	if err != nil {
		return Errorf(CodeInternal, "encode journal entry: %v", err)
	}
	line = append(line, '\n')
	if _, err := s.journal.Write(line); err != nil {
		if terr := s.journal.Truncate(s.journalSize); terr != nil {
			s.failed = Errorf(CodeUnavailable, "journal unusable after failed write: %v", terr)
		}
		return Errorf(CodeInternal, "write journal: %v", err)
	}
	if err := s.journal.Sync(); err != nil {
		// After a failed fsync the file's state is unknown: stop writing.
		s.failed = Errorf(CodeUnavailable, "journal unusable after failed fsync: %v", err)
		return Errorf(CodeInternal, "sync journal: %v", err)
	}
	s.journalSize += int64(len(line))
	if err := applyEntry(s.reg, e); err != nil {
		return Errorf(CodeInternal, "apply journal entry: %v", err)
	}
	if s.journalSize > s.compactMin && s.journalSize > 4*s.snapshotSize {
		// A failed compaction leaves the old journal in place; the
		// mutation itself is durable, so it still succeeds.
		_ = s.compact()
	}
	return nil
}

// newTokenID returns a token id unused in the registry and in pending.
func (s *EmbeddedStore) newTokenID(pending []Token) (string, error) {
	for range 10 {
		id := NewToken()
		if _, ok := s.reg.Token(id); ok {
			continue
		}
		if slices.ContainsFunc(pending, func(t Token) bool { return t.ID == id }) {
			continue
		}
		return id, nil
	}
	return "", Errorf(CodeInternal, "could not allocate a unique token")
}

// newTokens returns one new token per unique name, in order of first
// appearance.
func (s *EmbeddedStore) newTokens(channelID string, names []string) ([]Token, error) {
	var ts []Token
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
		ts = append(ts, Token{ID: id, ChannelID: channelID, Name: name})
	}
	return ts, nil
}

func tokenOps(ts []Token) []journalEntry {
	ops := make([]journalEntry, len(ts))
	for i := range ts {
		ops[i] = journalEntry{Op: opToken, Token: &ts[i]}
	}
	return ops
}

// CreateChannel implements Store. Ids come from a persisted counter and are
// never reused; an id already taken (by a v3 channel named like a number,
// or tokens or drains made for a channel that did not exist) is skipped.
func (s *EmbeddedStore) CreateChannel(ctx context.Context, name string, tokenNames []string) (Channel, []Token, error) {
	if err := s.begin(ctx); err != nil {
		return Channel{}, nil, err
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
	ch := Channel{ID: id, Name: name}
	ts, err := s.newTokens(id, tokenNames)
	if err != nil {
		return Channel{}, nil, err
	}
	ops := append([]journalEntry{
		{Op: opCounters, ChannelIndex: n},
		{Op: opChannel, Channel: &ch},
	}, tokenOps(ts)...)
	if err := s.commit(ops...); err != nil {
		return Channel{}, nil, err
	}
	SortTokens(ts)
	return ch, ts, nil
}

// PutChannel implements Store. With setTokens, tokens of the channel whose
// name is listed are kept (all of them if several share a name).
func (s *EmbeddedStore) PutChannel(ctx context.Context, id string, tokenNames []string, setTokens bool) (Channel, []Token, bool, error) {
	if id == "" {
		return Channel{}, nil, false, Errorf(CodeInvalid, "channel id is empty")
	}
	if err := s.begin(ctx); err != nil {
		return Channel{}, nil, false, err
	}
	defer s.mu.Unlock()
	ch, exists := s.reg.Channel(id)
	var ops []journalEntry
	if !exists {
		ch = Channel{ID: id}
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
			return Channel{}, nil, false, err
		}
		ops = append(ops, tokenOps(ts)...)
	}
	if len(ops) > 0 {
		if err := s.commit(ops...); err != nil {
			return Channel{}, nil, false, err
		}
	}
	return ch, s.reg.ChannelTokens(id), !exists, nil
}

// SetChannelFlags replaces a channel's flags ("no_tail", "no_redis"), an
// operator action with no API in Logplex (ErrChannelNotFound).
func (s *EmbeddedStore) SetChannelFlags(ctx context.Context, id string, flags []string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	ch, ok := s.reg.Channel(id)
	if !ok {
		return ErrChannelNotFound
	}
	ch.Flags = slices.Clone(flags)
	slices.Sort(ch.Flags)
	ch.Flags = slices.Compact(ch.Flags)
	return s.commit(journalEntry{Op: opChannel, Channel: &ch})
}

// Channel implements Store.
func (s *EmbeddedStore) Channel(ctx context.Context, id string) (Channel, error) {
	ch, ok := s.reg.Channel(id)
	if !ok {
		return Channel{}, ErrChannelNotFound
	}
	return ch, nil
}

// DeleteChannel implements Store. Tokens and drains made for a channel id
// that has no channel record are deleted too; ErrChannelNotFound only when
// there was nothing at all.
func (s *EmbeddedStore) DeleteChannel(ctx context.Context, id string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if !s.reg.ChannelInUse(id) {
		return ErrChannelNotFound
	}
	if err := s.commit(journalEntry{Op: opDelChannel, ID: id}); err != nil {
		return err
	}
	s.cursorVer.Add(1)
	return nil
}

// CreateToken implements Store.
func (s *EmbeddedStore) CreateToken(ctx context.Context, channelID, name string) (Token, error) {
	if channelID == "" {
		return Token{}, Errorf(CodeInvalid, "channel id is empty")
	}
	if err := s.begin(ctx); err != nil {
		return Token{}, err
	}
	defer s.mu.Unlock()
	id, err := s.newTokenID(nil)
	if err != nil {
		return Token{}, err
	}
	t := Token{ID: id, ChannelID: channelID, Name: name}
	if err := s.commit(journalEntry{Op: opToken, Token: &t}); err != nil {
		return Token{}, err
	}
	return t, nil
}

// ChannelTokens implements Store. Tokens made for a channel id without a
// channel record are listed too; no error for an unknown channel.
func (s *EmbeddedStore) ChannelTokens(ctx context.Context, channelID string) ([]Token, error) {
	return s.reg.ChannelTokens(channelID), nil
}

// ReserveDrain implements Store.
func (s *EmbeddedStore) ReserveDrain(ctx context.Context, channelID string) (Drain, error) {
	if channelID == "" {
		return Drain{}, Errorf(CodeInvalid, "channel id is empty")
	}
	if err := s.begin(ctx); err != nil {
		return Drain{}, err
	}
	defer s.mu.Unlock()
	d := Drain{ID: s.reg.DrainIndex() + 1, ChannelID: channelID, Token: NewDrainToken()}
	if err := s.commit(journalEntry{Op: opDrain, Drain: &d}); err != nil {
		return Drain{}, err
	}
	return d, nil
}

// CreateDrain implements Store. Checks, in order: the channel exists, the
// maximum, a duplicate URL; no id is used up when one fails.
func (s *EmbeddedStore) CreateDrain(ctx context.Context, channelID, url string, maxDrains int) (Drain, error) {
	if url == "" {
		return Drain{}, Errorf(CodeInvalid, "drain URL is empty")
	}
	if err := s.begin(ctx); err != nil {
		return Drain{}, err
	}
	defer s.mu.Unlock()
	if _, ok := s.reg.Channel(channelID); !ok {
		return Drain{}, ErrChannelNotFound
	}
	if maxDrains > 0 && s.reg.DrainsWithURL(channelID) >= maxDrains {
		return Drain{}, ErrTooManyDrains
	}
	if s.reg.DrainURLTaken(channelID, url, 0) {
		return Drain{}, ErrDrainExists
	}
	d := Drain{ID: s.reg.DrainIndex() + 1, ChannelID: channelID, Token: NewDrainToken(), URL: url}
	if err := s.commit(journalEntry{Op: opDrain, Drain: &d}); err != nil {
		return Drain{}, err
	}
	return d, nil
}

// SetDrainURL implements Store. The maximum is only checked when the drain
// had no URL yet (changing a URL does not add a drain with a URL).
func (s *EmbeddedStore) SetDrainURL(ctx context.Context, channelID string, drainID int64, url string, maxDrains int) (Drain, error) {
	if url == "" {
		return Drain{}, Errorf(CodeInvalid, "drain URL is empty")
	}
	if err := s.begin(ctx); err != nil {
		return Drain{}, err
	}
	defer s.mu.Unlock()
	d, ok := s.reg.Drain(drainID)
	if !ok || d.ChannelID != channelID {
		return Drain{}, ErrDrainNotFound
	}
	if d.URL == url {
		return d, nil
	}
	if d.URL == "" && maxDrains > 0 && s.reg.DrainsWithURL(channelID) >= maxDrains {
		return Drain{}, ErrTooManyDrains
	}
	if s.reg.DrainURLTaken(channelID, url, drainID) {
		return Drain{}, ErrDrainExists
	}
	d.URL = url
	if err := s.commit(journalEntry{Op: opDrain, Drain: &d}); err != nil {
		return Drain{}, err
	}
	return d, nil
}

// DeleteDrain implements Store.
func (s *EmbeddedStore) DeleteDrain(ctx context.Context, channelID string, drainID int64) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	d, ok := s.reg.Drain(drainID)
	if !ok || d.ChannelID != channelID {
		return ErrDrainNotFound
	}
	if err := s.commit(journalEntry{Op: opDelDrain, DrainID: drainID}); err != nil {
		return err
	}
	s.cursorVer.Add(1)
	return nil
}

// Drain implements Store.
func (s *EmbeddedStore) Drain(ctx context.Context, drainID int64) (Drain, error) {
	d, ok := s.reg.Drain(drainID)
	if !ok {
		return Drain{}, ErrDrainNotFound
	}
	return d, nil
}

// ChannelDrains implements Store (no error for an unknown channel).
func (s *EmbeddedStore) ChannelDrains(ctx context.Context, channelID string) ([]Drain, error) {
	return s.reg.ChannelDrains(channelID), nil
}

// Drains implements Store.
func (s *EmbeddedStore) Drains(ctx context.Context) ([]Drain, error) {
	return s.reg.Drains(), nil
}

// DrainCursor implements Store.
func (s *EmbeddedStore) DrainCursor(ctx context.Context, drainID int64) (Cursor, error) {
	c, _ := s.reg.DrainCursor(drainID)
	return c, nil
}

// SetDrainCursor implements Store. The cursor is in memory at once and on
// disk within about a second (see EmbeddedStore). A cursor for a drain that
// no longer exists is ignored.
func (s *EmbeddedStore) SetDrainCursor(ctx context.Context, drainID int64, c Cursor) error {
	if !s.ready.Load() {
		return ErrClosed
	}
	if s.reg.SetDrainCursor(drainID, c) {
		s.cursorVer.Add(1)
	}
	return nil
}

// CreateCred implements Store.
func (s *EmbeddedStore) CreateCred(ctx context.Context, name string, fullAPI, anyChannel bool) (Cred, error) {
	if err := s.begin(ctx); err != nil {
		return Cred{}, err
	}
	defer s.mu.Unlock()
	c := Cred{Pass: NewCredPass(), Name: name, FullAPI: fullAPI, AnyChannel: anyChannel}
	for range 10 {
		if id := NewCredID(); !s.credExists(id) {
			c.ID = id
			break
		}
	}
	if c.ID == "" {
		return Cred{}, Errorf(CodeInternal, "could not allocate a unique credential id")
	}
	if err := s.commit(journalEntry{Op: opCred, Cred: &c}); err != nil {
		return Cred{}, err
	}
	return c, nil
}

func (s *EmbeddedStore) credExists(id string) bool {
	_, ok := s.reg.LookupCred(id)
	return ok
}

// Creds implements Store.
func (s *EmbeddedStore) Creds(ctx context.Context) ([]Cred, error) {
	return s.reg.Creds(), nil
}

// DeleteCred implements Store.
func (s *EmbeddedStore) DeleteCred(ctx context.Context, id string) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if !s.credExists(id) {
		return ErrCredNotFound
	}
	return s.commit(journalEntry{Op: opDelCred, ID: id})
}

// CreateSession implements Store.
func (s *EmbeddedStore) CreateSession(ctx context.Context, body []byte, ttl time.Duration) (Session, error) {
	if ttl <= 0 {
		return Session{}, Errorf(CodeInvalid, "session ttl must be positive")
	}
	if err := s.begin(ctx); err != nil {
		return Session{}, err
	}
	defer s.mu.Unlock()
	sess := Session{ID: NewSessionID(), Body: bytes.Clone(body), Expires: time.Now().Add(ttl).Round(0)}
	if sess.Body == nil {
		sess.Body = []byte{}
	}
	if err := s.commit(journalEntry{Op: opSession, Session: &sess}); err != nil {
		return Session{}, err
	}
	return sess, nil
}

// Session implements Store.
func (s *EmbeddedStore) Session(ctx context.Context, id string) (Session, error) {
	sess, ok := s.reg.Session(id, time.Now())
	if !ok {
		return Session{}, ErrSessionNotFound
	}
	return cloneSession(sess), nil
}

// LookupToken implements Store.
func (s *EmbeddedStore) LookupToken(token []byte) (Route, bool) { return s.reg.LookupToken(token) }

// LookupCred implements Store.
func (s *EmbeddedStore) LookupCred(id string) (Cred, bool) { return s.reg.LookupCred(id) }

// Changes implements Store.
func (s *EmbeddedStore) Changes() <-chan struct{} { return s.reg.Changes() }

// Ready implements Store: true from OpenStore until Close.
func (s *EmbeddedStore) Ready() bool { return s.ready.Load() }

// Registry returns the in-memory model (read it; do not modify it: changes
// made there are not persisted).
func (s *EmbeddedStore) Registry() *Registry { return s.reg }

// Dir returns the data directory.
func (s *EmbeddedStore) Dir() string { return s.dir }

// Close flushes the drain cursors, closes the journal, ends every Changes
// subscription and releases the directory lock. Later mutations return
// ErrClosed; reads keep answering from memory. Closing twice is a no-op.
func (s *EmbeddedStore) Close() error {
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
			err = Errorf(CodeInternal, "close journal: %v", cerr)
		}
	}
	s.mu.Unlock()
	s.reg.Close()
	s.lock.Close() // releases the flock
	return err
}
