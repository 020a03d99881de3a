package api

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/plexus-router/plexus/channels"
)

// A drain's starting position is fixed before the API answers, so a
// message accepted right after the 201 is delivered however late the
// drain's worker (on this node or another) starts.
func TestDrainStartsWhereTheAPIAnswered(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.MaxDrains = 2 }))
	ctx := context.Background()
	ch, _ := e.channel("app")
	e.appendRaw(ch, "<134>1 - h app web.1 - - before 1", "<134>1 - h app web.1 - - before 2")
	info, err := e.log.Info(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}

	var created map[string]any
	for i, path := range []string{"/v2/channels/" + ch + "/drains", "/v3/channels/" + ch + "/drains"} {
		r := e.call("POST", path, fmt.Sprintf(`{"url":"syslog://127.0.0.1:%d"}`, 9000+i))
		if r.code != 201 {
			t.Fatalf("POST %s = %v", path, r)
		}
		if err := json.Unmarshal([]byte(r.body), &created); err != nil {
			t.Fatal(err)
		}
		id := int64(created["id"].(float64))
		cur, err := e.store.DrainCursor(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := (channels.Cursor{Epoch: info.Epoch, Offset: info.Next}); cur != want {
			t.Errorf("%s: stored cursor %+v, want %+v (the log's next offset when the API answered)", path, cur, want)
		}
	}

	// Changing a drain's URL keeps its place in the stream.
	id := int64(created["id"].(float64))
	moved := channels.Cursor{Epoch: info.Epoch, Offset: 2}
	if err := e.store.SetDrainCursor(ctx, id, moved); err != nil {
		t.Fatal(err)
	}
	if r := e.call("PUT", fmt.Sprintf("/v3/channels/%s/drains/%d", ch, id), `{"url":"syslog://127.0.0.1:9100"}`); r.code != 200 {
		t.Fatalf("PUT drain = %v", r)
	}
	if cur, _ := e.store.DrainCursor(ctx, id); cur != moved {
		t.Errorf("after a URL change the cursor is %+v, want %+v", cur, moved)
	}

	// A drain refused by the limit leaves nothing behind.
	if r := e.call("POST", "/v2/channels/"+ch+"/drains", `{"url":"syslog://127.0.0.1:9200"}`); r.code != 422 {
		t.Fatalf("third drain = %v, want 422", r)
	}
	if ds, _ := e.store.ChannelDrains(ctx, ch); len(ds) != 2 {
		t.Errorf("channel has %d drains after a refused one, want 2", len(ds))
	}
}
