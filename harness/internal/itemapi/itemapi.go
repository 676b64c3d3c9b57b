// Package itemapi answers the item requests of the demo apps (demoapp,
// identityapp) alike, as the load generator (loadgen.Items) expects them:
// POST /items answers 201 with the item, 409 when its id exists; GET
// /items/{id} answers the item, 404 when there is none.
package itemapi

import (
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
)

// Created answers a POST /items whose insert returned err: exists says
// that err is the database's refusal of a duplicate id.
func Created(w http.ResponseWriter, id string, exists bool, err error, it any) {
	switch {
	case exists:
		http.Error(w, "item "+id+" exists", http.StatusConflict)
	case err != nil:
		http.Error(w, "insert item: "+err.Error(), http.StatusInternalServerError)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(it)
	}
}

// Found answers a GET /items/{id} whose read returned it and err.
func Found(w http.ResponseWriter, id string, err error, it any) {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		http.Error(w, "no item "+id, http.StatusNotFound)
	case err != nil:
		http.Error(w, "read item: "+err.Error(), http.StatusInternalServerError)
	default:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(it)
	}
}
