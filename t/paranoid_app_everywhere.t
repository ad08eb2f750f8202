#!/usr/bin/perl

# Tests for paranoid_session module: "logout-everywhere" from the
# application ends every session of a user. Three clients (their own
# cookies and User-Agents) log in as one user; the command from one of
# them ends all three (each is new on its next request, memcached keeps no
# record of them) and expires its own cookies. An administrator's
# "logout-everywhere user=bob" ends bob's sessions and not its own; without
# user= and without a bound user the command is logged and ignored.
# paranoid_user_max_sessions 2: a third login of one user ends the oldest
# session, the two newest stay.

###############################################################################

use warnings;
use strict;

use Test::More;

use Digest::SHA qw/ sha256_hex /;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx;
use Test::Paranoid;
use Test::Paranoid::App;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http proxy/)->has_daemon('memcached');

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    # a loaded machine must not turn a slow memcached into errors
    paranoid_session_store 127.0.0.1:%%PORT_11211%%;
    paranoid_session_store_timeout 2s;

    upstream app {
        server 127.0.0.1:%%PORT_8081%%;
    }

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;
        add_header X-User "[$paranoid_session_user]" always;

        paranoid_session on;
        proxy_set_header X-Session-User $paranoid_session_user;

        location / {
            proxy_pass http://app;
        }

        location /capped/ {
            paranoid_user_max_sessions 2;
            proxy_pass http://app/;
        }
    }
}

EOF

memcached_start($t, 11211);
$t->run_daemon(\&app_daemon, port(8081), $t->testdir());
$t->waitforsocket('127.0.0.1:' . port(8081));
$t->run();

$t->plan(65);

###############################################################################

my $LOG = $t->testdir() . '/error.log';

# error.log from byte $from on, and its size.
sub log_since {
	my ($from) = @_;
	open my $fh, '<', $LOG or return '';
	seek $fh, $from, 0;
	local $/;
	return scalar(<$fh>) // '';
}

sub log_size { return -s $LOG // 0 }

# Every value memcached holds: { key => value }.
sub store {
	return { map { $_ => memcached_value(11211, $_) } memcached_keys(11211) };
}

# The uids (hex) of the session records memcached holds (core/src/record.rs:
# version 1, kind 1, uid at bytes 3..18).
sub stored_uids {
	return map { unpack 'x3 H32', $_ }
		grep { defined && length >= 19 && substr($_, 0, 2) eq "\x01\x01" }
		values %{store()};
}

# The key of a user's index without a secret file (core/src/secret.rs:
# prefix, "u:", hex of SHA-256 of "user", the id's length as 8 bytes
# big-endian, the id).
sub index_key {
	my ($user) = @_;
	return 'ps:u:' . sha256_hex('user' . pack('Q>', length $user) . $user);
}

# The uids (hex) a user's index lists (core/src/user_index.rs: version 1,
# kind 3, n, then n entries of key hash (32), uid (16), created_ms (8));
# undef without an index.
sub user_index_uids {
	my ($user) = @_;
	my $v = memcached_value(11211, index_key($user));
	return undef unless defined $v && substr($v, 0, 2) eq "\x01\x03";
	my $n = unpack 'x2 C', $v;
	return [ map { unpack 'H32', substr($v, 3 + 56 * $_ + 32, 16) }
		0 .. $n - 1 ];
}

# Logs $b in as $user at $base; its variables.
sub login {
	my ($b, $user, $base) = @_;
	$base //= '/';
	$b->get($base);
	return app_vars($b->get("${base}login?user=$user"));
}

sub uid_of { return app_vars($_[0]->get($_[1] // '/'))->{uid} // '' }

###############################################################################

# three clients, one user

my @b = map { browser(ua => "Browser/$_") } qw/ A B C /;
my @uids;
for my $i (0 .. 2) {
	my $v = login($b[$i], 'alice');
	is($v->{status}, 'rotated', "alice $i: logged in");
	is($v->{user}, 'alice', "alice $i: user");
	push @uids, $v->{uid} // '';
}
is(scalar(keys %{{ map { $_ => 1 } @uids }}), 3, 'alice: three sessions');
for my $i (0 .. 2) {
	my $v = app_vars($b[$i]->get('/'));
	is($v->{status}, 'valid', "alice $i: valid before");
	is($v->{seen_user}, 'alice', "alice $i: application sees alice");
}
my %stored = map { $_ => 1 } stored_uids();
is(scalar(grep { $stored{$_} } @uids), 3, 'alice: three records stored');
is(join(',', sort @{user_index_uids('alice') || []}), join(',', sort @uids),
	'alice: the index lists the three');

# logout-everywhere from the second client

my $r = $b[1]->get('/everywhere');
my $v = app_vars($r);
is($v->{status}, 'destroyed', 'everywhere: own session destroyed');
is($v->{user}, '', 'everywhere: no user on the response');
like(set_cookies($r)->{sessionid}{line} // '', qr/Max-Age=0/,
	'everywhere: own token cookie expired');
like(set_cookies($r)->{sessionnonce}{line} // '', qr/Max-Age=0/,
	'everywhere: own nonce cookie expired');
unlike($r, qr/^X-Paranoid-Session:/mi, 'everywhere: header not shown');

%stored = map { $_ => 1 } stored_uids();
is(scalar(grep { $stored{$_} } @uids), 0, 'everywhere: no record left');
is(user_index_uids('alice'), undef, 'everywhere: no index left');

for my $i (0 .. 2) {
	$v = app_vars($b[$i]->get('/'));
	is($v->{status}, 'new', "everywhere: client $i new after");
	isnt($v->{uid}, $uids[$i], "everywhere: client $i another uid");
	is($v->{seen_user}, '', "everywhere: client $i no user");
}

# an administrator ends bob's sessions, not its own

my $admin = browser(ua => 'Admin/1.0');
$v = login($admin, 'root');
my $admin_uid = $v->{uid} // '';
is($v->{user}, 'root', 'admin: logged in');

my @bob = map { browser(ua => "Bob/$_") } 1 .. 2;
my @bob_uids = map { login($_, 'bob')->{uid} // '' } @bob;

$r = $admin->get('/everywhere?user=bob');
$v = app_vars($r);
is($v->{status}, 'valid', 'admin: own session valid');
is($v->{user}, 'root', 'admin: still root');
is(set_cookie_count($r, 'sessionid'), 0, 'admin: no token cookie');
unlike($r, qr/^X-Paranoid-Session:/mi, 'admin: header not shown');

%stored = map { $_ => 1 } stored_uids();
is(scalar(grep { $stored{$_} } @bob_uids), 0, 'admin: no record of bob left');
ok($stored{$admin_uid}, 'admin: own record kept');
is(user_index_uids('bob'), undef, 'admin: no index of bob left');
is(join(',', @{user_index_uids('root') || []}), $admin_uid,
	'admin: own index kept');

for my $i (0 .. 1) {
	$v = app_vars($bob[$i]->get('/'));
	is($v->{status}, 'new', "admin: bob $i new after");
	is($v->{seen_user}, '', "admin: bob $i no user");
}
$v = app_vars($admin->get('/'));
is($v->{status}, 'valid', 'admin: valid after');
is($v->{uid}, $admin_uid, 'admin: same uid after');
is($v->{seen_user}, 'root', 'admin: application still sees root');

# no user given, none bound: ignored, logged

my $anon = browser(ua => 'Anonymous/1.0');
my $anon_uid = uid_of($anon);
my $from = log_size();
$r = $anon->get('/everywhere');
$v = app_vars($r);
my @errors = grep { /^\S+ \S+ \[error\]/ } split /\n/, log_since($from);
is($v->{status}, 'valid', 'no user: session unchanged');
is($v->{uid}, $anon_uid, 'no user: same uid');
is(set_cookie_count($r, 'sessionid'), 0, 'no user: no token cookie');
is(scalar(grep { /ignored logout-everywhere/ } @errors), 1,
	'no user: one error line');
is(app_vars($anon->get('/'))->{status}, 'valid', 'no user: valid after');
is(app_vars($admin->get('/'))->{status}, 'valid',
	'no user: other sessions untouched');

# the cap: a third login of one user ends the oldest session

my @c = map { browser(ua => "Carol/$_") } 1 .. 3;
my @c_uids;
for my $i (0 .. 2) {
	$v = login($c[$i], 'carol', '/capped/');
	is($v->{status}, 'rotated', "cap: carol $i logged in");
	push @c_uids, $v->{uid} // '';
}

$v = app_vars($c[0]->get('/capped/'));
is($v->{status}, 'new', 'cap: oldest session ended');
is($v->{seen_user}, '', 'cap: oldest has no user');
for my $i (1 .. 2) {
	$v = app_vars($c[$i]->get('/capped/'));
	is($v->{status}, 'valid', "cap: carol $i valid");
	is($v->{uid}, $c_uids[$i], "cap: carol $i same uid");
	is($v->{seen_user}, 'carol', "cap: carol $i application sees carol");
}
is(join(',', sort @{user_index_uids('carol') || []}),
	join(',', sort @c_uids[1, 2]), 'cap: index lists the two newest');

###############################################################################
