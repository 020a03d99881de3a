package api

import (
	"context"

	"github.com/plexus-router/plexus/channels"
)

// createDrain adds a drain with a destination to an existing channel. The
// drain delivers every message accepted after the API answered, whichever
// node delivers it and however late its worker starts: the drain is
// reserved first (a drain without a URL is never delivered), its starting
// cursor — the log's next offset now — is stored, and only then does it
// get its URL. Checks and errors are those of Store.SetDrainURL (limit,
// duplicate); a drain that fails them is deleted again.
func (s *Server) createDrain(ctx context.Context, channelID, url string, o channels.DrainOptions) (channels.Drain, error) {
	if _, err := s.Store.Channel(ctx, channelID); err != nil {
		return channels.Drain{}, err
	}
	d, err := s.Store.ReserveDrain(ctx, channelID)
	if err != nil {
		return channels.Drain{}, err
	}
	if o != (channels.DrainOptions{}) {
		// Before the URL: the drain delivers nothing until it has one.
		if _, err := s.Store.SetDrainOptions(ctx, channelID, d.ID, o); err != nil {
			_ = s.Store.DeleteDrain(context.WithoutCancel(ctx), channelID, d.ID)
			return channels.Drain{}, err
		}
	}
	filled, err := s.setDrainURL(ctx, channelID, d.ID, url)
	if err != nil {
		_ = s.Store.DeleteDrain(context.WithoutCancel(ctx), channelID, d.ID)
		return channels.Drain{}, err
	}
	return filled, nil
}

// setDrainURL sets a drain's destination. A drain getting its first URL
// starts at the log's next offset (see createDrain); a drain whose URL
// changes keeps its place in the stream.
func (s *Server) setDrainURL(ctx context.Context, channelID string, drainID int64, url string) (channels.Drain, error) {
	if old, err := s.Store.Drain(ctx, drainID); err == nil && old.ChannelID == channelID && old.URL == "" {
		info, err := s.Log.Info(ctx, channelID)
		if err != nil {
			return channels.Drain{}, err
		}
		if err := s.Store.SetDrainCursor(ctx, drainID, channels.Cursor{Epoch: info.Epoch, Offset: info.Next}); err != nil {
			return channels.Drain{}, err
		}
	}
	return s.Store.SetDrainURL(ctx, channelID, drainID, url, s.conf.MaxDrains)
}
