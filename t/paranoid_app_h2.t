#!/usr/bin/perl

# Tests for paranoid_session module: the application's X-Paranoid-Session
# over HTTP/2. Several sessions share one connection, and their logins,
# logouts, a "logout-everywhere", an error response, a malformed value and
# a client's forged header travel as concurrent streams: each command
# applies to its own stream's session only (a login rotates and binds the
# user, a logout expires the cookies, and the old tokens are dead on the
# next streams), and the header is in no HTTP/2 response. A large body
# held during a login arrives intact next to another stream's.

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
use Test::Paranoid::HTTP2;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http proxy http_v2/)
	->has_daemon('memcached');

# HTTP/2 without TLS, prior knowledge: "http2 on" since 1.25.1, before it
# the listen parameter.
my $listen = $t->has_version('1.25.1')
	? "listen 127.0.0.1:8080;\n        http2 on;"
	: 'listen 127.0.0.1:8080 http2;';

$t->write_file_expand('nginx.conf', <<"EOF");

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
        $listen
        server_name  localhost;

        add_header X-Status "[\$paranoid_session_status]" always;
        add_header X-Uid "[\$paranoid_session_uid]" always;
        add_header X-User "[\$paranoid_session_user]" always;

        paranoid_session on;
        proxy_set_header X-Session-User \$paranoid_session_user;

        location / {
            proxy_pass http://app;
        }
    }
}

EOF

memcached_start($t, 11211);
$t->run_daemon(\&app_daemon, port(8081), $t->testdir());
$t->waitforsocket('127.0.0.1:' . port(8081));
$t->run();

$t->plan(70);

###############################################################################

my $TOKEN = qr/[A-Za-z0-9_-]{43}/;

# A client on the shared connection: its User-Agent and cookie jar.
sub client { return { ua => $_[0], jar => {} } }

# A request of client $c for $path, with its cookies (or %opts' cookies)
# as a browser sends them over HTTP/2, one field per cookie, and extra
# header fields.
sub request_of {
	my ($c, $path, %opts) = @_;
	my %jar = %{$opts{cookies} || $c->{jar}};
	return { path => $path, headers => [ 'user-agent' => $c->{ua},
		(map { (cookie => "$_=$jar{$_}") } sort keys %jar),
		@{$opts{headers} || []} ] };
}

# Sends the requests (each [ client, path, %opts ]) as concurrent streams
# of the connection and waits for them; returns their results:
# { code, body, status, uid, user, seen_user, seen_control, control (the
# X-Paranoid-Session values the client got), token (sessionid set),
# expired (sessionid expired), reset }. The clients' jars follow the
# responses, except for requests with keep => 0.
sub burst {
	my ($h2, @requests) = @_;
	my @ids = $h2->send_requests(map { request_of(@$_) } @requests);
	$h2->wait_for(@ids);
	my @results;
	for my $i (0 .. $#ids) {
		my ($c, undef, %opts) = @{$requests[$i]};
		my $res = $h2->response($ids[$i]) || {};
		my $value = sub {
			my ($v) = Test::Paranoid::HTTP2::header_values($res, $_[0]);
			return defined $v && $v =~ /^\[(.*)\]\z/ ? $1 : $v;
		};
		my @set = Test::Paranoid::HTTP2::header_values($res, 'set-cookie');
		my $head = join '', map { "Set-Cookie: $_\r\n" } @set;
		my $cookies = set_cookies("HTTP/1.1 200 OK\r\n$head\r\n");
		my $sid = $cookies->{sessionid};
		push @results, {
			code => $res->{status},
			reset => $res->{reset},
			body => $res->{body},
			(map { $_ => $value->("x-$_") } qw/ status uid user /),
			seen_user => $value->('x-seen-user'),
			seen_control => $value->('x-seen-control'),
			control => [ Test::Paranoid::HTTP2::header_values($res,
				'x-paranoid-session') ],
			token => $sid && ($sid->{attrs}{'max-age'} // '') ne '0'
				? $sid->{value} : undef,
			expired => $sid && ($sid->{attrs}{'max-age'} // '') eq '0'
				? 1 : 0,
		};
		apply_set_cookies($c->{jar}, "HTTP/1.1 200 OK\r\n$head\r\n")
			unless defined $opts{keep} && !$opts{keep};
	}
	return @results;
}

# How many results of a burst show the control header.
sub shown { return scalar grep { @{$_->{control}} } @_ }

my $h2 = Test::Paranoid::HTTP2->new(port(8080));

# six sessions start on one connection

my @names = qw/ alice bob carol dave eve frank /;
my %c = map { $_ => client("Browser/$_") } @names;
my @r = burst($h2, map { [ $c{$_}, '/' ] } @names);
is(scalar(grep { ($_->{status} // '') eq 'new' } @r), 6, 'start: six new');
my %uid = map { $names[$_] => $r[$_]{uid} // '' } 0 .. $#names;
my %t0 = map { $_ => $c{$_}{jar}{sessionid} // '' } @names;
is(scalar(grep { /^$TOKEN\z/ } values %t0), 6, 'start: six tokens');

# commands on concurrent streams

my ($login_a, $login_b, $logout_c, $forged_d, $err_e, $bad_f) = burst($h2,
	[ $c{alice}, '/login?user=alice' ],
	[ $c{bob}, '/login?user=bob' ],
	[ $c{carol}, '/logout' ],
	[ $c{dave}, '/', headers => [ 'x-paranoid-session' => 'logout' ] ],
	[ $c{eve}, '/login?user=eve&code=404' ],
	[ $c{frank}, '/raw?v=Login' ],
);
is(shown($login_a, $login_b, $logout_c, $forged_d, $err_e, $bad_f), 0,
	'commands: the header in no response');
is(scalar(grep { defined $_->{reset} }
	$login_a, $login_b, $logout_c, $forged_d, $err_e, $bad_f), 0,
	'commands: no stream reset');

is($login_a->{code}, 200, 'login alice: 200');
is($login_a->{status}, 'rotated', 'login alice: rotated');
is($login_a->{uid}, $uid{alice}, 'login alice: same uid');
is($login_a->{user}, 'alice', 'login alice: user');
like($login_a->{token} // '', qr/^$TOKEN\z/, 'login alice: new token');
isnt($login_a->{token} // '', $t0{alice}, 'login alice: another token');

is($login_b->{status}, 'rotated', 'login bob: rotated');
is($login_b->{uid}, $uid{bob}, 'login bob: same uid');
is($login_b->{user}, 'bob', 'login bob: user');
like($login_b->{token} // '', qr/^$TOKEN\z/, 'login bob: new token');
isnt($login_b->{token} // '', $login_a->{token} // '',
	'login bob: not alice\'s token');

is($logout_c->{status}, 'destroyed', 'logout carol: destroyed');
is($logout_c->{expired}, 1, 'logout carol: token cookie expired');
is($logout_c->{uid}, '', 'logout carol: no uid');

is($forged_d->{status}, 'valid', 'forged dave: session valid');
is($forged_d->{token}, undef, 'forged dave: no token');
unlike($forged_d->{seen_control} // 'absent', qr/logout|absent/,
	'forged dave: application does not see it');

is($err_e->{code}, 404, 'login on 404 eve: 404');
is($err_e->{status}, 'rotated', 'login on 404 eve: rotated');
is($err_e->{user}, 'eve', 'login on 404 eve: user');

is($bad_f->{status}, 'valid', 'malformed frank: session unchanged');
is($bad_f->{token}, undef, 'malformed frank: no token');
is($bad_f->{user}, '', 'malformed frank: no user');

# the next streams see it: old tokens dead, new ones valid with their user

my @after = burst($h2,
	[ $c{alice}, '/', cookies => { sessionid => $t0{alice} }, keep => 0 ],
	[ $c{alice}, '/' ],
	[ $c{bob}, '/', cookies => { sessionid => $t0{bob} }, keep => 0 ],
	[ $c{bob}, '/' ],
	[ $c{carol}, '/', cookies => { sessionid => $t0{carol} }, keep => 0 ],
	[ $c{dave}, '/' ],
	[ $c{eve}, '/' ],
	[ $c{frank}, '/' ],
);
is(shown(@after), 0, 'after: the header in no response');
my ($a_old, $a_new, $b_old, $b_new, $c_old, $d, $e, $f) = @after;

is($a_old->{status}, 'new', 'after: alice\'s old token unknown');
isnt($a_old->{uid}, $uid{alice}, 'after: alice\'s old token, another uid');
is($a_old->{user}, '', 'after: alice\'s old token, no user');
is($a_new->{status}, 'valid', 'after: alice valid');
is($a_new->{uid}, $uid{alice}, 'after: alice same uid');
is($a_new->{user}, 'alice', 'after: alice user');
is($a_new->{seen_user}, 'alice', 'after: application sees alice');

is($b_old->{status}, 'new', 'after: bob\'s old token unknown');
is($b_new->{status}, 'valid', 'after: bob valid');
is($b_new->{user}, 'bob', 'after: bob user');
is($b_new->{seen_user}, 'bob', 'after: application sees bob');

is($c_old->{status}, 'new', 'after: carol\'s token dead');
isnt($c_old->{uid}, $uid{carol}, 'after: carol another uid');

is($d->{status}, 'valid', 'after: dave still valid');
is($d->{uid}, $uid{dave}, 'after: dave same uid');
is($e->{status}, 'valid', 'after: eve valid');
is($e->{seen_user}, 'eve', 'after: application sees eve');
is($f->{status}, 'valid', 'after: frank still valid');
is($f->{uid}, $uid{frank}, 'after: frank same uid');
is($f->{seen_user}, '', 'after: frank no user');

# two more sessions of alice on the same connection, then a logout of
# bob's and a logout-everywhere of alice's at once

my @more = map { client("Browser/alice$_") } 2 .. 3;
burst($h2, map { [ $_, '/' ] } @more);
@r = burst($h2, map { [ $_, '/login?user=alice' ] } @more);
is(scalar(grep { ($_->{status} // '') eq 'rotated' } @r), 2,
	'alice x3: two more logins');

my ($logout_b, $everywhere_a) = burst($h2,
	[ $c{bob}, '/logout' ],
	[ $c{alice}, '/everywhere' ],
);
is(shown($logout_b, $everywhere_a), 0, 'end: the header in no response');
is($logout_b->{status}, 'destroyed', 'end: bob destroyed');
is($logout_b->{expired}, 1, 'end: bob\'s token expired');
is($everywhere_a->{status}, 'destroyed', 'end: alice destroyed');
is($everywhere_a->{expired}, 1, 'end: alice\'s token expired');

@r = burst($h2, map { [ $_, '/' ] } $c{bob}, $c{alice}, @more, $c{eve});
is(shown(@r), 0, 'end after: the header in no response');
is($r[0]{status}, 'new', 'end after: bob new');
is($r[1]{status}, 'new', 'end after: alice new');
is($r[2]{status}, 'new', 'end after: alice\'s 2nd session new');
is($r[3]{status}, 'new', 'end after: alice\'s 3rd session new');
is(scalar(grep { ($_->{user} // 'x') eq '' } @r[0 .. 3]), 4,
	'end after: no user');
is($r[4]{status}, 'valid', 'end after: eve untouched');
is($r[4]{user}, 'eve', 'end after: eve still eve');

# large bodies held while the store works, next to one that is not

my $SIZE = 300_000;
my $want = md5_hex(app_body($SIZE));
my @big = map { client("Browser/big$_") } 1 .. 2;
burst($h2, map { [ $_, '/' ] } @big);
my ($big_login, $big_plain) = burst($h2,
	[ $big[0], "/login?user=grace&size=$SIZE" ],
	[ $big[1], "/page?size=$SIZE" ],
);
is(shown($big_login, $big_plain), 0, 'large: the header in no response');
is($big_login->{status}, 'rotated', 'large: login applied');
is($big_login->{user}, 'grace', 'large: user');
is(length($big_login->{body} // ''), $SIZE, 'large login: length');
is(md5_hex($big_login->{body} // ''), $want, 'large login: intact');
is($big_plain->{status}, 'valid', 'large plain: valid');
is(md5_hex($big_plain->{body} // ''), $want, 'large plain: intact');

is($h2->goaway, undef, 'one connection throughout');
$h2->close();

###############################################################################
