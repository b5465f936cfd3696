#!/bin/sh
# `ferry chat` driven for real: in a tmux pane (a real terminal) alice types a
# line and bob receives it; then, while a half-typed line sits at the prompt,
# a message from bob arrives: it must appear above the prompt and the
# half-typed text must still be there, unharmed, to be finished and sent.
# Last, the chat scripted through a pipe (no terminal) sends line by line.
. "$(dirname "$0")/cli_lib.sh" "$@"

command -v tmux >/dev/null 2>&1 ||
    fail "tmux is not installed (scripts/install-deps.sh installs it)"
TMUX_SOCK="$T/tmux.sock"
tm() {
    tmux -S "$TMUX_SOCK" "$@"
}
kill_tmux() {
    tm kill-server 2>/dev/null || true
}
CLI_EXTRA_CLEANUP=kill_tmux
pane() {
    tm capture-pane -p -t chat
}
pane_has() {
    pane | grep -qF -- "$1"
}
# The last non-empty row of the pane: where the prompt is.
prompt_row() {
    pane | grep -v '^ *$' | tail -n 1
}
prompt_is() {
    [ "$(prompt_row)" = "$1" ]
}

set -- $(ports 2)
PA=$1 PB=$2
start alice "$PA" "$PB"
start bob "$PB" "$PA"
wait_for 20 "alice never heard of bob" knows alice bob
wait_for 20 "bob never heard of alice" knows bob alice

step "open the chat in a 100x30 terminal"
tm -u new-session -d -s chat -x 100 -y 30 \
    "'$FERRY' --socket '$(sock alice)' chat bob; echo \"chat exited \$?\"; sleep 60"
wait_for 10 "the chat shows no prompt" prompt_is "bob>"
pane_has "now writing to bob (online)" || fail "no conversation notice: $(pane)"

step "type a line"
tm send-keys -t chat -l "hello from the chat"
tm send-keys -t chat Enter
wait_for 20 "bob never got the typed line" inbox_has bob "alice: hello from the chat"
wait_for 20 "no delivered notice in the chat" pane_has "delivered to bob: hello from the chat"
pane_has "me → bob: hello from the chat" || pane_has "me _ bob: hello from the chat" ||
    fail "the sent line is not echoed: $(pane)"

step "a message arrives while a line is half typed"
tm send-keys -t chat -l "half typed"
wait_for 5 "the half-typed text is not at the prompt" prompt_is "bob> half typed"
f bob send alice incoming while you type >/dev/null
wait_for 20 "the incoming message never showed" pane_has "bob: incoming while you type"
pane | grep -v "^ *$"
prompt_is "bob> half typed" || fail "the half-typed line was lost; last row: '$(prompt_row)'"
# The message sits above the prompt, not glued to the typed text.
pane | grep -q "^bob: incoming while you type$" || fail "the message line is garbled: $(pane)"
[ "$(pane | grep -c "half typed")" -eq 1 ] || fail "the typed text shows more than once"

step "finish the line and send it"
tm send-keys -t chat -l " and finished"
tm send-keys -t chat Enter
wait_for 20 "bob never got the finished line" inbox_has bob "alice: half typed and finished"

step "slash commands"
tm send-keys -t chat -l "/users"
tm send-keys -t chat Enter
users_table_shown() {
    pane | grep -q '^NAME *ADDRESS'
}
wait_for 5 "/users printed no table" users_table_shown
tm send-keys -t chat -l "/nonsense"
tm send-keys -t chat Enter
wait_for 5 "no answer to an unknown command" pane_has "unknown command /nonsense"
tm send-keys -t chat -l "/quit"
tm send-keys -t chat Enter
wait_for 10 "the chat did not quit" pane_has "chat exited 0"

step "chat without a terminal, line by line"
printf '/chat bob\nscripted hello\n/online\n' | f alice chat >"$T/piped.out" 2>&1 ||
    fail "piped chat failed: $(cat "$T/piped.out")"
cat "$T/piped.out"
grep -q "me → bob: scripted hello" "$T/piped.out" || fail "piped chat did not send"
grep -q "^bob " "$T/piped.out" || fail "piped /online shows no bob"
grep -q "$(printf '\033')" "$T/piped.out" && fail "terminal escapes written to a pipe"
wait_for 20 "bob never got the piped line" inbox_has bob "alice: scripted hello"

stop alice
stop bob
echo "PASS"
