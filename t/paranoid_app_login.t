#!/usr/bin/perl

# Tests for paranoid_session module: the application logs users in and out
# through its response header X-Paranoid-Session (a stand-in application
# started by the test decides per path). "login user=ID" rotates the token
# (status rotated, same uid, the old token ends at once) and binds the user,
# which $paranoid_session_user shows on every later request and the
# application gets back through proxy_set_header; "login" alone keeps the
# bound user; "logout" destroys the session and expires its cookies. The
# header never reaches the client: not on a 404 or 500, not with a large
# body (proxy_buffering on and off, the body intact), not on HEAD. A
# client's own copy of the header does nothing and its value never reaches
# the application. A malformed value is logged at error and ignored as a
# whole. paranoid_session_control_header renames the header, or with "off"
# lets it pass as any other header.

###############################################################################

use warnings;
use strict;

use Test::More;

use Digest::MD5 qw/ md5_hex /;

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

        location /unbuffered/ {
            proxy_buffering off;
            proxy_pass http://app/;
        }

        location /renamed/ {
            paranoid_session_control_header X-App-Session;
            proxy_pass http://app/;
        }

        location /off/ {
            paranoid_session_control_header off;
            proxy_pass http://app/;
        }
    }
}

EOF

memcached_start($t, 11211);
$t->run_daemon(\&app_daemon, port(8081), $t->testdir());
$t->waitforsocket('127.0.0.1:' . port(8081));
$t->run();

$t->plan(112);

###############################################################################

my $TOKEN = qr/[A-Za-z0-9_-]{43}/;
my $SIZE = 300_000;
my $LOG = $t->testdir() . '/error.log';

# The response's header part.
sub head_of {
	my ($r) = @_;
	return (($r // '') =~ /^(.*?)\r?\n\r?\n/s)[0] // '';
}

# Whether a response shows a control header (the default name unless given).
sub shows_control {
	my ($r, $name) = @_;
	$name //= 'X-Paranoid-Session';
	return head_of($r) =~ /^\Q$name\E:/mi ? 1 : 0;
}

# Whether a response expires cookie $name.
sub expires {
	my ($r, $name) = @_;
	my $c = set_cookies($r)->{$name} or return 0;
	return ($c->{attrs}{'max-age'} // '') eq '0' ? 1 : 0;
}

# The response body (Content-Length framed, as the application sends it).
sub body_of {
	my ($r) = @_;
	return (($r // '') =~ /\r?\n\r?\n(.*)\z/s)[0] // '';
}

# error.log from byte $from on, and its size.
sub log_since {
	my ($from) = @_;
	open my $fh, '<', $LOG or return '';
	seek $fh, $from, 0;
	local $/;
	return scalar(<$fh>) // '';
}

sub log_size { return -s $LOG // 0 }

# A browser with a new session at $base: the browser and the session's uid.
sub session_at {
	my ($base, %opts) = @_;
	my $b = browser(%opts);
	my $v = app_vars($b->get($base // '/'));
	return ($b, $v->{uid} // '');
}

# login rotates: a new token, the same uid, the user bound

my ($b, $uid) = session_at('/');
my $t0 = $b->cookie('sessionid') // '';
like($t0, qr/^$TOKEN\z/, 'session: token');

my $r = $b->get('/login?user=alice');
my $v = app_vars($r);
my $t1 = $b->cookie('sessionid') // '';
is($v->{code}, 200, 'login: 200');
is($v->{status}, 'rotated', 'login: rotated');
is($v->{uid}, $uid, 'login: same uid');
like($t1, qr/^$TOKEN\z/, 'login: new token');
isnt($t1, $t0, 'login: another token');
is($v->{user}, 'alice', 'login: user bound on the login response');
is($v->{seen_user}, '', 'login: the application had no user yet');
is(shows_control($r), 0, 'login: control header not shown');

# the token before the login ends at once

$v = app_vars($b->get('/', cookies => { sessionid => $t0 }, keep => 0));
is($v->{status}, 'new', 'login: token before it unknown');
isnt($v->{uid}, $uid, 'login: token before it, another uid');
is($v->{user}, '', 'login: token before it, no user');

# every later request carries the user, to the application too

for my $uri ('/', '/page', '/other?x=1') {
	$v = app_vars($b->get($uri));
	is($v->{status}, 'valid', "after login $uri: valid");
	is($v->{uid}, $uid, "after login $uri: same uid");
	is($v->{user}, 'alice', "after login $uri: user");
	is($v->{seen_user}, 'alice', "after login $uri: application sees user");
}

# "login" without user= rotates again and keeps the user

$r = $b->get('/login');
$v = app_vars($r);
my $t2 = $b->cookie('sessionid') // '';
is($v->{status}, 'rotated', 'login alone: rotated');
isnt($t2, $t1, 'login alone: another token');
is($v->{uid}, $uid, 'login alone: same uid');
is($v->{user}, 'alice', 'login alone: user kept');
is(shows_control($r), 0, 'login alone: control header not shown');

$v = app_vars($b->get('/', cookies => { sessionid => $t1 }, keep => 0));
is($v->{status}, 'new', 'login alone: token before it unknown');

$v = app_vars($b->get('/'));
is($v->{status}, 'valid', 'login alone: then valid');
is($v->{seen_user}, 'alice', 'login alone: application sees the user');

# another user= rebinds the session

$v = app_vars($b->get('/login?user=bob'));
is($v->{status}, 'rotated', 'relogin: rotated');
is($v->{user}, 'bob', 'relogin: new user');
$v = app_vars($b->get('/'));
is($v->{seen_user}, 'bob', 'relogin: application sees the new user');

# logout: destroyed, cookies expired, the token dead

my $last = $b->cookie('sessionid') // '';
$r = $b->get('/logout');
$v = app_vars($r);
is($v->{code}, 200, 'logout: 200');
is($v->{status}, 'destroyed', 'logout: destroyed');
is($v->{uid}, '', 'logout: no uid');
is($v->{user}, '', 'logout: no user');
is(expires($r, 'sessionid'), 1, 'logout: token cookie expired');
is(expires($r, 'sessionnonce'), 1, 'logout: nonce cookie expired');
is(shows_control($r), 0, 'logout: control header not shown');
is($b->cookie('sessionid'), undef, 'logout: browser dropped the token');

$v = app_vars($b->get('/', cookies => { sessionid => $last }, keep => 0));
is($v->{status}, 'new', 'logout: token unknown after');
isnt($v->{uid}, $uid, 'logout: another uid after');
is($v->{seen_user}, '', 'logout: application sees no user after');

# error responses from the application: the header is taken all the same

($b, $uid) = session_at('/');
$r = $b->get('/login?user=alice&code=404');
$v = app_vars($r);
is($v->{code}, 404, '404: status kept');
is(shows_control($r), 0, '404: control header not shown');
is($v->{status}, 'rotated', '404: login applied');
is($v->{user}, 'alice', '404: user bound');

$r = $b->get('/logout?code=500');
$v = app_vars($r);
is($v->{code}, 500, '500: status kept');
is(shows_control($r), 0, '500: control header not shown');
is($v->{status}, 'destroyed', '500: logout applied');
is(expires($r, 'sessionid'), 1, '500: token cookie expired');

# a large body, held while the store works: intact, buffered or not

my $want = md5_hex(app_body($SIZE));
for my $base ('/', '/unbuffered/') {
	my $name = $base eq '/' ? 'buffered' : 'unbuffered';
	($b, $uid) = session_at($base);
	my $before = $b->cookie('sessionid') // '';
	$r = $b->get("${base}login?user=alice&size=$SIZE");
	$v = app_vars($r);
	my $body = body_of($r);
	is($v->{code}, 200, "$name body: 200");
	is(length $body, $SIZE, "$name body: length");
	is(md5_hex($body), $want, "$name body: intact");
	is(shows_control($r), 0, "$name body: control header not shown");
	is($v->{status}, 'rotated', "$name body: login applied");
	isnt($b->cookie('sessionid') // '', $before, "$name body: new token");
	$v = app_vars($b->get($base));
	is($v->{user}, 'alice', "$name body: user bound after");
}

# HEAD

($b, $uid) = session_at('/');
my $before = $b->cookie('sessionid') // '';
(my $head = $b->request_text('/login?user=alice')) =~ s/^GET /HEAD /;
$r = http($head);
$b->absorb($r);
$v = app_vars($r);
is($v->{code}, 200, 'head: 200');
is(shows_control($r), 0, 'head: control header not shown');
is(body_of($r), '', 'head: no body');
is($v->{status}, 'rotated', 'head: login applied');
isnt($b->cookie('sessionid') // '', $before, 'head: new token');
$v = app_vars($b->get('/'));
is($v->{status}, 'valid', 'head: new token valid');
is($v->{user}, 'alice', 'head: user bound');

# a client's own header does nothing, and its value never reaches the
# application

($b, $uid) = session_at('/');
$b->get('/login?user=alice');
$r = $b->get('/', headers => [ 'X-Paranoid-Session: logout' ]);
$v = app_vars($r);
is($v->{status}, 'valid', 'client logout: session valid');
is($v->{user}, 'alice', 'client logout: user kept');
is(set_cookie_count($r, 'sessionid'), 0, 'client logout: no token cookie');
unlike($v->{seen_control} // 'absent', qr/logout|absent/,
	'client logout: application does not see it');

$r = $b->get('/', headers => [ 'X-Paranoid-Session: login user=mallory' ]);
$v = app_vars($r);
is($v->{status}, 'valid', 'client login: no rotation');
is($v->{user}, 'alice', 'client login: user not changed');
is(set_cookie_count($r, 'sessionid'), 0, 'client login: no token cookie');
unlike($v->{seen_control} // 'absent', qr/mallory|absent/,
	'client login: application does not see it');

$v = app_vars($b->get('/'));
is($v->{status}, 'valid', 'client header: session still valid');
is($v->{uid}, $uid, 'client header: same uid');
is($v->{seen_user}, 'alice', 'client header: application sees alice');

# malformed values: logged at error, ignored as a whole, never shown

my @malformed = (
	[ 'space after =', 'v=login%20user%3D%20x' ],
	[ 'capital', 'v=Login' ],
	[ 'two lines', 'v=login%20user%3Deve&v=logout' ],
);

($b, $uid) = session_at('/');
$b->get('/login?user=alice');
my $token = $b->cookie('sessionid') // '';
for my $case (@malformed) {
	my ($name, $query) = @$case;
	my $from = log_size();
	$r = $b->get("/raw?$query");
	$v = app_vars($r);
	my @errors = grep { /^\S+ \S+ \[error\]/ } split /\n/, log_since($from);
	is($v->{status}, 'valid', "malformed, $name: session unchanged");
	is(set_cookie_count($r, 'sessionid'), 0, "malformed, $name: no token");
	is(shows_control($r), 0, "malformed, $name: not shown");
	is(scalar(grep { /ignored the upstream's X-Paranoid-Session/ } @errors),
		1, "malformed, $name: one error line");
}
$v = app_vars($b->get('/'));
is($v->{status}, 'valid', 'malformed: session valid after');
is($v->{uid}, $uid, 'malformed: same uid after');
is($v->{user}, 'alice', 'malformed: user still alice');
is($b->cookie('sessionid'), $token, 'malformed: same token');

# paranoid_session_control_header X-App-Session: the new name is the
# command, the default name is just a header there

($b, $uid) = session_at('/renamed/');
$r = $b->get('/renamed/login?user=alice&hdr=X-App-Session');
$v = app_vars($r);
is($v->{status}, 'rotated', 'renamed: login applied');
is($v->{user}, 'alice', 'renamed: user bound');
is(shows_control($r, 'X-App-Session'), 0, 'renamed: header not shown');

$r = $b->get('/renamed/logout');
$v = app_vars($r);
is($v->{status}, 'valid', 'renamed: default name not a command');
like(head_of($r), qr/^X-Paranoid-Session: logout\r?$/m,
	'renamed: default name passes through');

# off: no command, the header passes through unchanged, both ways

($b, $uid) = session_at('/off/');
$r = $b->get('/off/login?user=alice');
$v = app_vars($r);
is($v->{status}, 'valid', 'off: no rotation');
is($v->{user}, '', 'off: no user');
is(set_cookie_count($r, 'sessionid'), 0, 'off: no token cookie');
like(head_of($r), qr/^X-Paranoid-Session: login user=alice\r?$/m,
	'off: header passes through unchanged');
$v = app_vars($b->get('/off/', headers => [ 'X-Paranoid-Session: logout' ]));
is($v->{seen_control}, 'logout', 'off: client header reaches the application');

###############################################################################
