# tests/harness/chainlint-cases.sh: the cases chainlint.pl is checked on
# before it lints tests/cli (its first TAP test). A line "#LINT" marks the
# line after it as one the linter must report; it must report no other.
# Never run, only parsed.

# --- nothing to report ---------------------------------------------------------

t_chained() {
	expect_exit 0 sluice run || return 1
	expect_grep "a" "$T_DIR/out" || { echo "why"; cat "$T_DIR/out"; return 1; }
	expect_grep "b" "$T_DIR/out" || return
	x=$(psql_q "select 1") || return 1
	t0=$(date +%s)
	n=$((n + 1))
	end=$(($(date +%s) + 30))
	model m "select 1
from t where a = ')' or b = \"(\"
-- expect_eq 1 2"
	psql_q "select 1
	        from t" >/dev/null || return 1
	cat >f <<EOF
expect_eq 1 2
$(grep x y)
EOF
	cat >g <<-'EOF'
	expect_eq 1 2
	EOF
	jq . f >f.new &&
		mv f.new f || return 1
	sluice run >o 2>&1
	rc=$?
	[ "$rc" = 1 ] || return 1
	if grep -q a f; then
		echo found
	elif ! grep -q b f; then
		expect_eq 1 1 || return 1
	else
		echo none
	fi
	if [ -s f ] && grep -q x f; then
		echo "f has x"
		grep -n x f
		return 1
	fi
	while ! test -s f; do
		sleep 0.1
	done
	for f in a b; do
		[ -f "$f" ] || continue
		expect_grep x "$f" || return 1
	done
	case $x in
	a|'b)') expect_eq 1 1 || return 1 ;;
	(c) echo c ;;
	*) echo other; return 1 ;;
	esac
	sluice run && { echo "exited 0"; return 1; }
	[ -f x ] && return 0
	setup_only
	(cd sub && sluice run) || return 1
	echo "a \
b" >>f
	expect_eq "$(cat <(echo a))" a || return 1
	grep -q x f || true
	{
		echo "    other:"
		SLUICE_TEST_CONNECTOR=odbc conn_keys "      "
	} >>profiles.yml
	expect_eq 1 1
}
ok "chained" t_chained

setup_only() { rm -f x; mkdir -p y; }

# the last command needs nothing, nor the last of a last if
t_last_if() {
	if [ -f x ]; then
		expect_eq 1 1
	else
		expect_eq 2 2
	fi
}
ok "last if" t_last_if

# not a test: not linted
not_a_test() {
	grep x y
	grep z y
}

# --- to report -----------------------------------------------------------------

t_unchained() {
	expect_exit 0 sluice run || return 1
#LINT
	expect_grep '^COPY \($' "$T_DIR/q"
	rm -f models/x.sql
#LINT
	psql_q "select count(*)
	        from t" >"$T_DIR/n"
#LINT
	x=$(psql_q "select 1")
#LINT
	local y=$(psql_q "select 1")
#LINT
	expect_eq 1 "$x" || echo "not one"
#LINT
	expect_eq 1 "$x" || { echo "not one"; return; }
#LINT
	cd sub
#LINT
	grep -q a f && grep -q b f
#LINT
	! grep -q c f
#LINT
	PGDATABASE=other psql_q "select 1"
	for f in a b; do
#LINT
		expect_grep x "$f"
	done
	while read -r l; do
#LINT
		echo "$l" | grep -q x
	done <f
	if [ -f x ]; then
#LINT
		expect_eq 1 1
	fi
#LINT
	(cd sub && sluice run)
	helper_check || return 1
	expect_eq 1 1 || return 1
#LINT
	expect_eq 1 1 || echo "last, and the handler does not fail"
}
ok "unchained" t_unchained

# a helper of a test is linted too
helper_check() {
#LINT
	grep -q x file
	true
}

# a test defined and run inside another function
group() {
	t_inner() {
#LINT
		expect_eq 1 2
		expect_eq 1 1
	}
	ok "inner" t_inner
}
group
