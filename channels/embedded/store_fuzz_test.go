package embedded

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/plexus-router/plexus/channels/registry"
)

// FuzzReplayJournal: any journal content either loads or is rejected with
// an error, never a panic, and what loads can be written as a snapshot that
// loads to the same state.
func FuzzReplayJournal(f *testing.F) {
	f.Add([]byte(`{"op":"counters","channel_index":3,"drain_index":2}` + "\n"))
	f.Add([]byte(`{"op":"batch","ops":[{"op":"channel","channel":{"id":"1"}},{"op":"token","token":{"token":"t.a","channel_id":"1","name":"app"}}]}` + "\n" +
		`{"op":"drain","drain":{"id":4,"channel_id":"1","token":"d.x","url":"syslog://h"}}` + "\n" +
		`{"op":"del_channel","id":"1"}` + "\n"))
	f.Add([]byte(`{"op":"session","session":{"id":"s","body":"e30=","expires":"2099-01-01T00:00:00Z"}}` + "\n{\"op\":\"cr"))
	f.Add([]byte(`{"op":"token"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, journalFile)
		content := append([]byte(`{"op":"header","version":1}`+"\n"), data...)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		reg := registry.New()
		reg.BeginBulk()
		_, _, err := replayJournal(path, reg)
		reg.EndBulk()
		if err != nil {
			return
		}
		st := reg.State(zeroTime)
		snap := filepath.Join(dir, "snap")
		fh, err := os.Create(snap)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := writeSnapshot(fh, st); err != nil {
			t.Fatal(err)
		}
		fh.Close()
		reg2 := registry.New()
		if _, _, err := replayJournal(snap, reg2); err != nil {
			t.Fatalf("snapshot does not load: %v", err)
		}
		if a, b := fmtState(st), fmtState(reg2.State(zeroTime)); a != b {
			t.Fatalf("snapshot round trip:\n%s\n%s", a, b)
		}
	})
}

var zeroTime = time.Time{}

func fmtState(st registry.State) string {
	for i := range st.Sessions {
		st.Sessions[i].Expires = st.Sessions[i].Expires.UTC()
	}
	b, _ := json.Marshal(st)
	return string(b)
}
