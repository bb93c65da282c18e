// Command desktop is a small desktop application that holds a Tally seat
// while it runs: it checks a seat out (waiting if every seat is taken),
// prints every change of the seat's state, "works" once a second only
// while its Validator says the feature may be used, and checks the seat in
// on Ctrl-C. Kill the cluster's leader while it runs: it keeps working.
//
//	go run ./examples/desktop --addr 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103 --key TLY-... --feature cad
//
// Every flag also reads its TALLY_* variable: TALLY_ADDR, TALLY_KEY,
// TALLY_FEATURE.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tallyhq/tally/api"
	"github.com/tallyhq/tally/client"
)

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	addr := flag.String("addr", env("TALLY_ADDR", "127.0.0.1:7101"), "comma-separated node addresses [$TALLY_ADDR]")
	key := flag.String("key", env("TALLY_KEY", ""), "license key (required) [$TALLY_KEY]")
	feature := flag.String("feature", env("TALLY_FEATURE", "cad"), "feature to hold a seat of [$TALLY_FEATURE]")
	flag.Parse()
	if *key == "" {
		fmt.Fprintln(os.Stderr, "desktop: a license key is required (--key or $TALLY_KEY)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, strings.Split(*addr, ","), *key, *feature); err != nil {
		log.Fatalf("desktop: %v", err)
	}
}

func run(ctx context.Context, addrs []string, key, feature string) error {
	c, err := client.New(client.Config{Addrs: addrs})
	if err != nil {
		return err
	}
	log.Printf("checking out a seat of %q (waiting while all are taken; Ctrl-C to give up)", feature)
	seat, err := c.AcquireSeat(ctx, api.CheckoutRequest{LicenseKey: key, Feature: feature}, client.WaitForSeat())
	if err != nil {
		return err
	}
	defer func() {
		if err := seat.Close(context.Background()); err != nil {
			log.Printf("checkin: %v", err)
		}
	}()
	v := client.NewValidator(seat)

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Printf("stopping: checking the seat in")
			return nil
		case ev, ok := <-seat.Events():
			if !ok {
				return errors.New("the seat has ended")
			}
			report(ev)
			if ev.State == client.SeatEnded {
				return fmt.Errorf("the seat has ended: %w", ev.Err)
			}
		case <-tick.C:
			if vd := v.Check(feature); vd.Valid {
				log.Printf("working (lease %s, token valid until %s)", vd.LeaseID, vd.ExpiresAt.Format(time.TimeOnly))
			} else {
				log.Printf("paused: %s", vd.Reason)
			}
		}
	}
}

func report(ev client.SeatEvent) {
	switch ev.State {
	case client.SeatHeld:
		log.Printf("seat held: lease %s until %s", ev.Lease.ID, ev.Lease.ExpiresAt.Local().Format(time.TimeOnly))
	case client.SeatLost:
		log.Printf("seat lost (lease %s): %v; taking one back", ev.Lease.ID, ev.Err)
	case client.SeatEnded:
		log.Printf("seat ended (lease %s): %v", ev.Lease.ID, ev.Err)
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
