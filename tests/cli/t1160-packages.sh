#!/usr/bin/env bash
# t1160: dbt packages. `sluice deps` installs local, git (served by git
# daemon on loopback) and hub packages (through $SLUICE_PACKAGE_MIRROR),
# follows their own packages.yml, writes package-lock.yml and installs
# from it, never leaves half a package, and names the place of bad input.
# Installed packages then build on PostgreSQL with their vars and config,
# under the root project's overrides.
. "$(dirname "$0")/lib.sh"

FIX="$(cd "$(dirname "$0")/../fixtures/dbt-packages" && pwd)"
P="$T_DIR/proj"
cp -R "$FIX/proj" "$P" && cp -R "$FIX/local_pkg" "$T_DIR/local_pkg" || exit 1
write_profile proj
cd "$P" || exit 1
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

# repo DIR NAME [MODEL_SQL]: a git repository at DIR holding a dbt package NAME.
repo() {
	mkdir -p "$1/models" &&
	printf 'name: %s\nversion: "1.0.0"\n' "$2" >"$1/dbt_project.yml" &&
	printf '%s\n' "${3:-select 1 as v}" >"$1/models/$2_m.sql" &&
	git -C "$1" init -q -b main &&
	git -C "$1" add -A &&
	git -C "$1" commit -q -m init
}

# release DIR TAG SQL: commit a new model text in DIR's package and tag it.
release() {
	printf '%s\n' "$3" >"$(ls "$1"/models/*.sql | head -n 1)" &&
	git -C "$1" commit -q -a -m "$2" &&
	git -C "$1" tag "$2"
}

# The hub: acme/widgets needs acme/gears. Mirrors are bare clones.
M="$T_DIR/mirror"
repo "$T_DIR/src/gears" gears "select 'gears 1.0.0' as v" &&
git -C "$T_DIR/src/gears" tag 1.0.0 &&
release "$T_DIR/src/gears" v1.1.0 "select 'gears 1.1.0' as v" &&
release "$T_DIR/src/gears" 2.0.0 "select 'gears 2.0.0' as v" &&
repo "$T_DIR/src/widgets" widgets "select 'widgets 1.0.0' as v" &&
git -C "$T_DIR/src/widgets" tag 1.0.0 &&
printf 'packages:\n  - package: acme/gears\n    version: [">=1.0.0", "<2.0.0"]\n' >"$T_DIR/src/widgets/packages.yml" &&
git -C "$T_DIR/src/widgets" add packages.yml &&
release "$T_DIR/src/widgets" 1.2.0 "select 'widgets 1.2.0' as v" &&
release "$T_DIR/src/widgets" 2.0.0 "select 'widgets 2.0.0' as v" &&
release "$T_DIR/src/widgets" 1.5.0-b1 "select 'widgets 1.5.0-b1' as v" &&
mkdir -p "$M/acme" &&
git clone -q --bare "$T_DIR/src/gears" "$M/acme/gears" &&
git clone -q --bare "$T_DIR/src/widgets" "$M/acme/widgets" || exit 1
export SLUICE_PACKAGE_MIRROR="$M"

# A git package served by git daemon on a free loopback port.
repo "$T_DIR/src/gitpkg" gitpkg "select 'gitpkg v1' as v" &&
git -C "$T_DIR/src/gitpkg" tag v1 &&
release "$T_DIR/src/gitpkg" v2 "select 'gitpkg v2' as v" &&
mkdir -p "$T_DIR/srv" &&
git clone -q --bare "$T_DIR/src/gitpkg" "$T_DIR/srv/gitpkg.git" || exit 1
GIT_URL=""
for try in 1 2 3 4 5 6; do
	port=$(( ($$ * 31 + try * 7919) % 20000 + 30000 ))
	git daemon --base-path="$T_DIR/srv" --export-all --reuseaddr --listen=127.0.0.1 --port="$port" \
		--pid-file="$T_DIR/gitd.pid" --detach 2>>"$T_DIR/gitd.log" || continue
	if T_NOTE=off wait_until 5 git ls-remote -q "git://127.0.0.1:$port/gitpkg.git"; then
		GIT_URL="git://127.0.0.1:$port/gitpkg.git"
		break
	fi
	kill "$(cat "$T_DIR/gitd.pid")" 2>/dev/null
done
[ -n "$GIT_URL" ] || { echo "Bail out! git daemon did not start: $(cat "$T_DIR/gitd.log")"; exit 1; }
at_exit 'kill "$(cat "$T_DIR/gitd.pid")" 2>/dev/null'
V1=$(git -C "$T_DIR/src/gitpkg" rev-parse v1)

cat >packages.yml <<YML
packages:
  - local: ../local_pkg
  - git: "$GIT_URL"
    revision: v1
  - package: acme/widgets
    version: [">=1.0.0", "<2.0.0"]
YML

t_install() {
	expect_exit 0 sluice deps || return 1
	expect_grep '^installed local_pkg from local \.\./local_pkg$' "$T_DIR/out" &&
	expect_grep "^installed gitpkg v1 \\(${V1:0:12}\\) from git $GIT_URL$" "$T_DIR/out" &&
	expect_grep '^installed widgets 1\.2\.0 \([0-9a-f]{12}\) from hub acme/widgets$' "$T_DIR/out" &&
	expect_grep '^installed gears 1\.1\.0 \([0-9a-f]{12}\) from hub acme/gears$' "$T_DIR/out" &&
	expect_grep '^4 packages in dbt_packages/, package-lock.yml written$' "$T_DIR/out" &&
	expect_eq "gears gitpkg local_pkg widgets" "$(ls dbt_packages | tr '\n' ' ' | sed 's/ $//')" &&
	expect_eq "select 'widgets 1.2.0' as v" "$(cat dbt_packages/widgets/models/widgets_m.sql)" &&
	expect_eq "select 'gitpkg v1' as v" "$(cat dbt_packages/gitpkg/models/gitpkg_m.sql)" &&
	expect_grep '^code,label$' dbt_packages/local_pkg/seeds/lp_codes.csv &&
	# no clone's history and no work folder are left behind
	expect_eq "" "$(ls -A dbt_packages | grep '^\.')" &&
	[ ! -e dbt_packages/gitpkg/.git ]
}
ok "sluice deps installs local, git and hub packages, and what they need" t_install

t_lock() {
	expect_grep '^  - name: gitpkg$' package-lock.yml &&
	expect_grep "^    git: \"$GIT_URL\"$" package-lock.yml &&
	expect_grep "^    revision: \"$V1\"$" package-lock.yml &&
	expect_grep '^    package: acme/widgets$' package-lock.yml &&
	expect_grep '^    version: "1\.2\.0"' package-lock.yml &&
	expect_grep '^    local: \.\./local_pkg$' package-lock.yml &&
	expect_grep '^sha1_hash: [0-9a-f]{40}$' package-lock.yml
}
ok "package-lock.yml records the git commit, the hub version and the spec's sha1_hash" t_lock

# New releases upstream: a tag v1 moved, widgets 1.3.0, gitpkg's v1 tag moved.
release "$T_DIR/src/widgets" 1.3.0 "select 'widgets 1.3.0' as v" &&
git -C "$T_DIR/src/widgets" push -q "$M/acme/widgets" 1.3.0 &&
git -C "$T_DIR/src/gitpkg" tag -f v1 v2 >/dev/null &&
git -C "$T_DIR/src/gitpkg" push -q -f "$T_DIR/srv/gitpkg.git" v1 2>/dev/null || exit 1

t_from_lock() {
	cp package-lock.yml "$T_DIR/lock.before" &&
	expect_exit 0 sluice deps || return 1
	expect_grep '^4 packages in dbt_packages/, as package-lock.yml says$' "$T_DIR/out" &&
	expect_eq "select 'widgets 1.2.0' as v" "$(cat dbt_packages/widgets/models/widgets_m.sql)" &&
	expect_eq "select 'gitpkg v1' as v" "$(cat dbt_packages/gitpkg/models/gitpkg_m.sql)" &&
	cmp package-lock.yml "$T_DIR/lock.before"
}
ok "with an unchanged spec, deps installs exactly the locked revisions" t_from_lock

t_upgrade() {
	expect_exit 0 sluice deps --upgrade || return 1
	expect_grep '^installed widgets 1\.3\.0 ' "$T_DIR/out" &&
	expect_eq "select 'widgets 1.3.0' as v" "$(cat dbt_packages/widgets/models/widgets_m.sql)" &&
	expect_eq "select 'gitpkg v2' as v" "$(cat dbt_packages/gitpkg/models/gitpkg_m.sql)" &&
	expect_grep '^    version: "1\.3\.0"' package-lock.yml &&
	expect_no_grep "$V1" package-lock.yml
}
ok "deps --upgrade resolves again and rewrites the lock" t_upgrade

t_spec_changed() {
	sed 's/"<2.0.0"/"<1.3.0"/' packages.yml >"$T_DIR/p" && cp "$T_DIR/p" packages.yml &&
	expect_exit 0 sluice deps || return 1
	expect_grep '^installed widgets 1\.2\.0 ' "$T_DIR/out" &&
	expect_grep 'package-lock.yml written' "$T_DIR/out"
}
ok "a changed packages.yml is resolved again, not read from the stale lock" t_spec_changed

# deps_with WANT SPEC: sluice deps exits WANT with packages.yml holding SPEC
# (printf %b text); packages.yml is as it was afterwards.
deps_with() {
	cp packages.yml "$T_DIR/p.keep" &&
	printf '%b' "$2" >packages.yml || return 1
	expect_exit "$1" sluice deps
	_rc=$?
	cp "$T_DIR/p.keep" packages.yml || return 1
	return "$_rc"
}

t_prerelease() {
	deps_with 0 "$(sed 's/"<1.3.0"\]/"<1.6.0"]\n    install-prerelease: true/' packages.yml)\n" &&
	expect_grep '^installed widgets 1\.5\.0-b1 ' "$T_DIR/out"
}
ok "pre-release tags count only with install-prerelease: true" t_prerelease

snapshot_pkgs() { find dbt_packages -type f | sort | xargs md5sum && ls -A dbt_packages; }

t_half_failed() {
	sluice deps >/dev/null 2>&1 &&
	snapshot_pkgs >"$T_DIR/before" &&
	cp -R "$T_DIR/local_pkg" "$T_DIR/other_pkg" &&
	sed -i 's/^name: local_pkg/name: other_pkg/' "$T_DIR/other_pkg/dbt_project.yml" &&
	git clone -q --bare "$T_DIR/src/gitpkg" "$T_DIR/srv/other.git" &&
	deps_with 2 "$(cat packages.yml)\n  - local: ../other_pkg\n  - git: \"${GIT_URL%/*}/other.git\"\n    revision: no-such-tag\n" &&
	expect_grep "packages.yml:8:5: git ${GIT_URL%/*}/other.git: no tag, branch or commit 'no-such-tag'" "$T_DIR/out" &&
	snapshot_pkgs >"$T_DIR/after" &&
	cmp "$T_DIR/before" "$T_DIR/after" &&
	[ ! -e dbt_packages/other_pkg ]
}
ok "a failed fetch installs nothing: no half package, no new package, no work folder" t_half_failed

t_name_checked() {
	git clone -q --bare "$T_DIR/src/gears" "$M/acme/sprockets" &&
	deps_with 2 "$(cat packages.yml)\n  - package: acme/sprockets\n    version: 1.0.0\n" &&
	expect_grep "packages.yml:7:5: package acme/sprockets is named 'gears' in its dbt_project.yml, not 'sprockets'" "$T_DIR/out"
}
ok "a hub package whose dbt_project.yml names another package is refused" t_name_checked

t_no_project_file() {
	deps_with 2 "$(cat packages.yml)\n  - git: \"${GIT_URL%/*}/other.git\"\n    revision: v2\n    subdirectory: models\n" &&
	expect_grep "packages.yml:7:5: git ${GIT_URL%/*}/other.git subdirectory models has no dbt_project.yml in that subdirectory" "$T_DIR/out"
}
ok "a folder without dbt_project.yml is not a package" t_no_project_file

# bad_spec SPEC MESSAGE: packages.yml holding SPEC fails with exit 2 and MESSAGE.
bad_spec() {
	deps_with 2 "$1" &&
	expect_grep "$2" "$T_DIR/out"
}
ok "an unknown key is an error at its place" bad_spec \
	'packages:\n  - local: ../local_pkg\n    revison: v1\n' \
	"^sluice: error: packages.yml:3:5: unknown key 'revison' in a package entry"
ok "a bad version range is an error at its place" bad_spec \
	'packages:\n  - package: acme/widgets\n    version: [">=1.0", "<2.0.0"]\n' \
	"^sluice: error: packages.yml:3:15: bad version range '>=1.0'"
ok "a hub package without version: is an error" bad_spec \
	'packages:\n  - package: acme/widgets\n' \
	"^sluice: error: packages.yml:2:5: package 'acme/widgets' needs version:"
ok "an entry that is two kinds at once is an error" bad_spec \
	'packages:\n  - package: acme/widgets\n    local: x\n    version: 1.0.0\n' \
	"^sluice: error: packages.yml:3:5: a package entry needs exactly one of local:, git: or package:"
ok "a hub package sluice cannot find says how to provide it" bad_spec \
	'packages:\n  - package: nobody/nothing\n    version: 1.0.0\n' \
	"packages.yml:2:5: package nobody/nothing: sluice does not know its repository"
ok "conflicting versions name both requirers" bad_spec \
	'packages:\n  - package: acme/gears\n    version: ">=2.0.0"\n  - package: acme/widgets\n    version: "1.2.0"\n' \
	"conflicting versions of acme/gears: packages.yml:2:5 \\(the project\\) wants >=2.0.0, dbt_packages/widgets/packages.yml:2:5 \\(widgets\\) wants >=1.0.0, <2.0.0, and no version satisfies both"

t_intersect() {
	# gears 2.0.0 is the highest the project accepts, but widgets needs < 2.0.0
	deps_with 0 'packages:\n  - package: acme/gears\n    version: ">=1.0.0"\n  - package: acme/widgets\n    version: "1.2.0"\n' &&
	expect_grep '^installed gears 1\.1\.0 ' "$T_DIR/out"
}
ok "requirements of one package from two places meet at a version both accept" t_intersect

t_git_mirror() {
	git clone -q --bare "$T_DIR/src/gitpkg" "$M/acme/gitpkg" &&
	deps_with 0 'packages:\n  - git: "https://example.invalid/acme/gitpkg.git"\n    revision: v2\n' &&
	expect_grep '^installed gitpkg v2 \([0-9a-f]{12}\) from git https://example.invalid/acme/gitpkg.git$' "$T_DIR/out" &&
	expect_grep '^    git: "https://example.invalid/acme/gitpkg.git"$' package-lock.yml
}
ok "a git URL is cloned from its folder under \$SLUICE_PACKAGE_MIRROR, and locked as written" t_git_mirror

t_unpinned() {
	deps_with 0 "packages:\n  - git: \"$GIT_URL\"\n" &&
	expect_grep "packages.yml:2:5: git package $GIT_URL is not pinned \\(no revision:\\): installing the head of its default branch" "$T_DIR/out" &&
	expect_grep '^installed gitpkg HEAD ' "$T_DIR/out" &&
	deps_with 0 "packages:\n  - git: \"$GIT_URL\"\n    warn-unpinned: false\n" &&
	expect_no_grep 'not pinned' "$T_DIR/out"
}
ok "a git package without revision: installs the default branch, with a warning dbt's warn-unpinned silences" t_unpinned

t_secret() {
	deps_with 1 'packages:\n  - git: "http://deploy:hunter2secret@127.0.0.1:1/x.git"\n    revision: v1\n' &&
	expect_no_grep hunter2secret "$T_DIR/out" &&
	expect_grep 'http://127.0.0.1:1/x.git' "$T_DIR/out"
}
ok "a password in a git URL never reaches the messages" t_secret

t_env_var() {
	export T1160_GIT="$GIT_URL" T1160_TOKEN=tok-s3cret &&
	deps_with 0 "packages:\n  - git: \"{{ env_var('T1160_GIT') }}\"\n    revision: v2\n" &&
	expect_grep '^installed gitpkg v2 ' "$T_DIR/out" &&
	# the lock keeps the text as written, never what env_var() gave
	expect_grep "^    git: \"\\{\\{ env_var\\('T1160_GIT'\\) }}\"$" package-lock.yml &&
	deps_with 1 "packages:\n  - git: \"http://{{ env_var('T1160_TOKEN') }}@127.0.0.1:1/x.git\"\n    revision: v1\n" &&
	expect_no_grep tok-s3cret "$T_DIR/out" &&
	deps_with 2 "packages:\n  - git: \"{{ env_var('T1160_UNSET') }}\"\n    revision: v1\n" &&
	expect_grep "^sluice: error: packages.yml:2:10: environment variable 'T1160_UNSET' is not set" "$T_DIR/out"
}
ok "env_var() in packages.yml is rendered for git, and the token stays out of the lock and the messages" t_env_var

# Back to the first packages for the build.
sluice deps >/dev/null 2>&1 || { echo "Bail out! sluice deps"; exit 1; }

t_build() {
	expect_exit 0 sluice build || return 1
	# the package's seed, with its own +schema
	expect_eq "3" "$(psql_q 'select count(*) from analytics_pkg_raw.lp_codes')" &&
	# vars: the root's global greeting and its local_pkg shade beat the package's own
	expect_eq "1|root-global|dark|3|root-global" \
		"$(psql_q 'select code, greeting, shade, n, root_greeting from analytics.uses_pkg order by code limit 1')" &&
	# config: the package's +materialized: view; the root's override of its marts: view, not table
	expect_eq "lp_base:v lp_summary:v uses_pkg:r" "$(psql_q "select string_agg(relname || ':' || relkind::text, ' '
		order by relname) from pg_class where relname in ('lp_base', 'lp_summary', 'uses_pkg')")" &&
	expect_eq "widgets 1.2.0" "$(psql_q 'select v from analytics.widgets_m')" &&
	# the package's macro, called inside it by name and from the project through its namespace
	expect_eq "ONE|ROOT" "$(psql_q 'select loud, root_loud from analytics.uses_pkg where code = 1')" &&
	expect_eq "pass" "$(rr '[.results[] | select(.unique_id | test("^test\\.local_pkg\\.is_positive_lp_base_code\\.")) | .status] | first')" &&
	expect_eq "success" "$(rr '.results[] | select(.unique_id == "model.local_pkg.lp_base") | .status')" &&
	expect_eq "pass" "$(rr '[.results[] | select(.unique_id | test("^test\\.local_pkg\\.not_null_lp_base_code\\.")) | .status] | first')" &&
	expect_eq "pass" "$(rr '[.results[] | select(.unique_id == "test.local_pkg.lp_no_big_codes") | .status] | first')"
}
ok "package models, seeds, macros and tests build on PostgreSQL with their vars and config under the root's" t_build

t_package_version() {
	# uses_pkg calls local_pkg's macro: a new version of the package rebuilds it, and says so
	f=dbt_packages/local_pkg/dbt_project.yml
	sed -i "s/^version: '0\.3\.0'/version: '0.4.0'/" "$f" &&
	plan_json || { sed -i "s/^version: '0\.4\.0'/version: '0.3.0'/" "$f"; return 1; }
	sed -i "s/^version: '0\.4\.0'/version: '0.3.0'/" "$f" &&
	expect_eq "build" "$(plan_action uses_pkg)" &&
	plan_json_reasons uses_pkg >"$T_DIR/reasons" &&
	expect_grep "^package 'local_pkg' changed$" "$T_DIR/reasons"
}
ok "a package's version is an input of the models that call its macros" t_package_version

t_ls() {
	sluice ls -s tag:pkg_marts >"$T_DIR/ls" 2>&1 || { cat "$T_DIR/ls"; return 1; }
	expect_eq "local_pkg.marts.lp_summary" "$(cat "$T_DIR/ls")" &&
	sluice ls --output json >"$T_DIR/ls" 2>&1 &&
	expect_grep '"unique_id":"model.gears.gears_m"' "$T_DIR/ls" &&
	expect_grep '"unique_id":"seed.local_pkg.lp_codes"' "$T_DIR/ls" &&
	sluice ls -s package:local_pkg --exclude lp_summary >"$T_DIR/ls" 2>&1 &&
	expect_eq "local_pkg.lp_base
local_pkg.lp_codes
source:local_pkg.pkg_src.upstream
test:local_pkg.is_positive_lp_base_code
test:local_pkg.lp_no_big_codes
test:local_pkg.not_null_lp_base_code" "$(LC_ALL=C sort "$T_DIR/ls")" &&
	sluice ls --resource-type source >"$T_DIR/ls" 2>&1 &&
	expect_grep '^source:local_pkg\.pkg_src\.upstream$' "$T_DIR/ls"
}
ok "package nodes are named after their package, and its tags select them" t_ls

t_debug() {
	sluice debug >"$T_DIR/out" 2>&1 || { cat "$T_DIR/out"; return 1; }
	expect_grep '^packages: gears 1\.0\.0, gitpkg 1\.0\.0, local_pkg 0\.3\.0, widgets 1\.0\.0 \(in dbt_packages/\)$' "$T_DIR/out"
}
ok "sluice debug lists the installed packages" t_debug

t_cli_vars() {
	sluice compile --vars '{shade: from-cli}' >"$T_DIR/out" 2>&1 || { cat "$T_DIR/out"; return 1; }
	expect_grep "'from-cli' as shade" target/compiled/dbt_packages/local_pkg/models/lp_base.sql
}
ok "--vars override a package's vars too" t_cli_vars

t_ref_package() {
	model wrong "select * from {{ ref('gitpkg', 'lp_base') }}" &&
	expect_exit 2 sluice ls
	rc=$?
	rm -f models/wrong.sql
	[ "$rc" = 0 ] &&
	expect_grep "models/wrong.sql:1:18: ref\\('gitpkg', 'lp_base'\\): 'lp_base' is in package 'local_pkg', not in 'gitpkg'" "$T_DIR/out"
}
ok "a two-argument ref names the package, and a wrong one is an error" t_ref_package

t_by_hand() {
	mkdir -p dbt_packages/handmade/models &&
	printf 'name: handmade\n' >dbt_packages/handmade/dbt_project.yml &&
	printf 'select 1 as x\n' >dbt_packages/handmade/models/hm.sql &&
	sluice ls >"$T_DIR/ls" 2>&1
	rc=$?
	rm -rf dbt_packages/handmade
	[ "$rc" = 0 ] || { cat "$T_DIR/ls"; return 1; }
	expect_grep '^handmade\.hm$' "$T_DIR/ls"
}
ok "a package put in dbt_packages/ by hand joins the project too" t_by_hand

t_install_path() {
	cp dbt_project.yml "$T_DIR/project.keep" &&
	printf 'packages-install-path: vendor\n' >>dbt_project.yml &&
	rm -rf dbt_packages &&
	sluice deps >"$T_DIR/out" 2>&1 &&
	sluice ls >"$T_DIR/ls" 2>&1
	rc=$?
	cp "$T_DIR/project.keep" dbt_project.yml &&
	sluice deps >/dev/null 2>&1 || return 1
	[ "$rc" = 0 ] || { cat "$T_DIR/out" "$T_DIR/ls"; return 1; }
	expect_grep '^4 packages in vendor/' "$T_DIR/out" &&
	expect_eq "gears gitpkg local_pkg widgets" "$(ls vendor | tr '\n' ' ' | sed 's/ $//')" &&
	# dbt_packages/ was gone: the project read them from vendor/
	expect_grep '^local_pkg\.lp_base$' "$T_DIR/ls"
}
ok "packages-install-path moves the packages, for deps and for the project" t_install_path

done_testing
