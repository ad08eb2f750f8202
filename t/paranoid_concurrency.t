#!/usr/bin/perl

# Tests for paranoid_session module: many requests of one session at once.
# With paranoid_nonce_timeout 0 and paranoid_nonce_window 3, 50 requests
# carrying the same token and nonce, all sent before any answer is read
# (50 HTTP/1.0 connections, then 50 streams of one HTTP/2 connection, as a
# browser loading a page), are all accepted: the first to reach the store
# renews the nonce with a compare-and-swap, the others either lose that race
# and re-read, or find their nonce among the previous ones. Exactly one
# renewal per burst, so the record's nonce chain holds one nonce per
# renewal, and the session goes on with the newest cookies.

###############################################################################

use warnings;
use strict;

use Test::More;

use Digest::SHA qw/ sha256_hex /;
use MIME::Base64 qw/ decode_base64url /;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx qw/ :DEFAULT http_start http_end /;
use Test::Paranoid;
use Test::Paranoid::HTTP2;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http/)->has_daemon('memcached');

# HTTP/2 without TLS, prior knowledge: "http2 on" since 1.25.1, before it
# the listen parameter (which 1.25.1+ still takes, with a warning).
my $h2 = $t->has_module('http_v2');
my $h2_listen = !$h2 ? ''
	: $t->has_version('1.25.1')
	? "listen 127.0.0.1:8081;\n        http2 on;"
	: 'listen 127.0.0.1:8081 http2;';
my $h2_server = !$h2 ? '' : <<"EOF";
    server {
        $h2_listen
        server_name  localhost;

        include session.conf;
    }
EOF

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

daemon off;
worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    # the many requests below need no debug log
    error_log %%TESTDIR%%/error.log notice;

    paranoid_session_store 127.0.0.1:%%PORT_11211%%;
    paranoid_session_store_timeout 5s;

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        include session.conf;
    }

$h2_server
}

EOF

# A superseded nonce stays good for 5s (default 1s): a slow machine taking
# more than a second for a burst must not turn it into a violation.
$t->write_file('session.conf', <<'EOF');
        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;
        add_header X-Violation "[$paranoid_session_violation]" always;

        location /page {
            paranoid_session on;
            paranoid_nonce_timeout 0;
            paranoid_nonce_window 3;
            paranoid_nonce_window_timeout 5s;
            paranoid_on_violation deny;
        }
EOF
$t->write_file('page', 'page');

memcached_start($t, 11211);
$t->run();

$t->plan(41);

###############################################################################

my $N = 50;
my $UA = 'ParanoidBrowser/1.0';

# memcached's compare-and-swap counters.
sub cas_counters {
	my $s = memcached_stats(11211);
	return { map { $_ => $s->{$_} // 0 } qw/ cas_hits cas_badval cas_misses
		cmd_set / };
}

sub delta {
	my ($before, $after) = @_;
	return { map { $_ => $after->{$_} - $before->{$_} } keys %$after };
}

# The session record under the token's key, decoded after the layout of
# core/src/record.rs (version 1, kind 1): { uid (hex), nonce, previous =>
# [ at_ms, ... ] }, or a string saying why it does not decode.
sub record_of {
	my ($token) = @_;
	my $key = 'ps:' . sha256_hex(decode_base64url($token));
	my $v = memcached_value(11211, $key);
	return 'absent' unless defined $v;
	my ($version, $kind, $flags, $uid) = unpack('C C C a16', $v);
	return "version $version kind $kind" unless $version == 1 && $kind == 1;
	my $at = 3 + 16 + 8 + 8;
	$at += 32 if $flags & 1;
	$at += 32 if $flags & 2;
	my $nonce = $flags & 4;
	$at += 40 if $nonce;
	return 'truncated' if length($v) < $at + 1;
	my $n = unpack("x$at C", $v);
	return "length " . length($v) . ", $n previous"
		unless length($v) == $at + 1 + 40 * $n;
	my @previous = map { unpack("x" . ($at + 1 + 40 * $_ + 32) . " Q>", $v) }
		0 .. $n - 1;
	return { uid => unpack('H*', $uid), nonce => $nonce ? 1 : 0,
		previous => \@previous };
}

# What a burst of responses shows: 200s, valid ones, the uids seen, and the
# new nonces set.
sub tally {
	my (@responses) = @_;
	my %r = (ok => 0, valid => 0, uids => {}, nonces => [], answered => 0);
	for my $res (@responses) {
		next unless defined $res;
		$r{answered}++;
		$r{ok}++ if ($res->{code} // 0) == 200;
		$r{valid}++ if ($res->{status} // '') eq 'valid';
		$r{uids}{$res->{uid} // ''}++;
		push @{$r{nonces}}, $res->{nonce} if defined $res->{nonce};
	}
	return \%r;
}

# A raw HTTP/1 response as { code, status, uid, nonce }.
sub h1_result {
	my ($r) = @_;
	return undef unless defined $r;
	my $v = session_vars($r);
	return { code => $v->{code}, status => $v->{status}, uid => $v->{uid},
		nonce => set_cookies($r)->{sessionnonce}{value} };
}

# The session

my $b = browser(ua => $UA);
my $v = session_vars($b->get('/page'));
my $uid = $v->{uid} // '';
is($v->{status}, 'new', 'session started');
my $token = $b->cookie('sessionid') // '';

# HTTP/1: 50 connections, all requests written before any answer is read

my $renewals = 0;
for my $round (1 .. 2) {
	my $name = "http/1 burst $round";
	my $nonce = $b->cookie('sessionnonce');
	my $before = cas_counters();
	my @socks = map { $b->start('/page') } 1 .. $N;
	my @raw = map { defined $_ ? http_end($_) : undef } @socks;
	my $after = cas_counters();
	my $d = delta($before, $after);
	my $r = tally(map { h1_result($_) } @raw);

	is($r->{ok}, $N, "$name: $N answered 200");
	is($r->{valid}, $N, "$name: $N valid");
	is(join(',', keys %{$r->{uids}}), $uid, "$name: all the same session");
	is(scalar @{$r->{nonces}}, 1, "$name: the nonce renewed once");
	is($d->{cas_hits}, 1, "$name: one compare-and-swap stored");
	diag("$name: $d->{cas_badval} requests lost the race and re-read")
		if $ENV{TEST_NGINX_VERBOSE};
	$renewals++ if @{$r->{nonces}};

	$b->absorb($_) for grep { defined } @raw;
	isnt($b->cookie('sessionnonce'), $nonce, "$name: newest nonce kept");
	my $res = $b->get('/page');
	$v = session_vars($res);
	is($v->{status}, 'valid', "$name: session goes on with the newest nonce");
	is($v->{uid}, $uid, "$name: same uid");
	$renewals++ if defined set_cookies($res)->{sessionnonce};
}

# the record: one session, its nonce chain holds the previous nonces of
# every renewal seen, at most the window (3), newest first

my @keys = memcached_keys(11211);
is(scalar @keys, 1, 'one record in memcached');
my $rec = record_of($token);
is(ref $rec ? $rec->{uid} : $rec, $uid, 'record decodes, same uid');
is(ref $rec ? scalar @{$rec->{previous}} : -1, $renewals > 3 ? 3 : $renewals,
	"record: $renewals renewals, window 3");
my @at = ref $rec ? @{$rec->{previous}} : ();
ok(!grep({ $at[$_] < $at[$_ + 1] } 0 .. $#at - 1), 'record: newest first');

# HTTP/2: one connection, 50 streams at once

SKIP: {
skip 'no http_v2', 19 unless $h2;

my $c = Test::Paranoid::HTTP2->new(port(8081));
my $max = $c->server_settings->{3};
ok(!defined $max || $max >= $N, "http/2: $N concurrent streams allowed");

# The cookies as a browser sends them over HTTP/2: one field per cookie.
my $request = sub {
	my %jar = %{$b->cookies};
	return { path => '/page', headers => [ 'user-agent' => $UA,
		map { (cookie => "$_=$jar{$_}") } sort keys %jar ] };
};

# A stream's response as { code, status, uid, nonce }.
my $h2_result = sub {
	my ($res) = @_;
	return undef unless $res && $res->{done} && !defined $res->{reset};
	my %h = map { $_ => (Test::Paranoid::HTTP2::header_values($res, "x-$_"))[0] }
		qw/ status uid /;
	s/^\[(.*)\]\z/$1/ for grep { defined } values %h;
	my ($nonce) = map { /^sessionnonce=([^;]*)/ ? $1 : () }
		Test::Paranoid::HTTP2::header_values($res, 'set-cookie');
	return { code => $res->{status}, %h, nonce => $nonce };
};

my $nonce = $b->cookie('sessionnonce');
my $before = cas_counters();
my @ids = $c->send_requests(map { $request->() } 1 .. $N);
ok($c->wait_for(@ids), "http/2: $N streams ended");
my $d = delta($before, cas_counters());
my @res = map { $c->response($_) } @ids;
is(scalar(grep { defined $_->{reset} } @res), 0, 'http/2: no stream reset');
my $r = tally(map { $h2_result->($_) } @res);

is($r->{answered}, $N, "http/2: $N answered");
is($r->{ok}, $N, "http/2: $N answered 200");
is($r->{valid}, $N, "http/2: $N valid");
is(join(',', keys %{$r->{uids}}), $uid, 'http/2: all the same session');
is(scalar @{$r->{nonces}}, 1, 'http/2: the nonce renewed once');
is($d->{cas_hits}, 1, 'http/2: one compare-and-swap stored');

# One connection is one worker: it reads all 50 streams before any store
# answer comes back, so the lookups overlap and every request but one
# loses the compare-and-swap (or does not try it): the race did happen.
cmp_ok($d->{cas_badval}, '>=', 1,
	"http/2: requests overlapped ($d->{cas_badval} lost the race)");
is($d->{cas_misses}, 0, 'http/2: the record never vanished');
$renewals++ if @{$r->{nonces}};

# the session goes on with the newest nonce, on the same connection and
# over HTTP/1

my ($newest) = @{$r->{nonces}};
$b->set(sessionnonce => $newest) if defined $newest;
isnt($b->cookie('sessionnonce'), $nonce, 'http/2: newest nonce kept');
my ($id) = $c->send_requests($request->());
$c->wait_for($id);
my $follow = $h2_result->($c->response($id)) || {};
is($follow->{status}, 'valid', 'http/2: next stream valid with the newest');
is($follow->{uid}, $uid, 'http/2: next stream, same uid');
$renewals++ if defined $follow->{nonce};
$b->set(sessionnonce => $follow->{nonce}) if defined $follow->{nonce};
$c->close();

$v = session_vars($b->get('/page'));
is($v->{status}, 'valid', 'http/2: then valid over http/1');
is($v->{uid}, $uid, 'http/2: then same uid over http/1');

$rec = record_of($token);
is(ref $rec ? $rec->{uid} : $rec, $uid, 'http/2: record decodes, same uid');
is(ref $rec ? scalar @{$rec->{previous}} : -1, 3,
	'http/2: record keeps the window of 3');
is(scalar(my @k = memcached_keys(11211)), 1, 'http/2: still one record');

}

# no worker died

my $log = $t->read_file('error.log');
unlike($log, qr/signal|exited|\[alert\]|panic/i, 'no crash in the error log');

###############################################################################
