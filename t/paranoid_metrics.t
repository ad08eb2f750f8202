#!/usr/bin/perl

# Tests for paranoid_session module: the counters of paranoid_session_metrics.
# Two workers (reuseport spreads the connections over both) count into one
# shared zone: after each step the test compares every counter of the
# exposition with what it did (new, valid, rotated, expired, violation,
# destroyed, bypass and error requests; violations by reason and action;
# sessions created, cycled, rotated, destroyed and expired by timeout; the
# application's commands; the store failure policy). The counts survive a
# reload. With memcached stopped, every failed request is one store error
# and one application of its location's failure policy. The metrics
# location itself never checks sessions, and the JSON form carries the
# same values.

###############################################################################

use warnings;
use strict;

use Test::More;

use JSON::PP;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx qw/ :DEFAULT http_content /;
use Test::Paranoid;
use Test::Paranoid::Load qw/ nginx_workers wait_until /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http proxy http_ssl socket_ssl/)
	->has_daemon('memcached')->has_daemon('openssl');

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

daemon off;
worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    paranoid_session_store 127.0.0.1:%%PORT_11211%%;
    paranoid_session_store_timeout 1s;

    server {
        listen       127.0.0.1:8080 reuseport;
        listen       127.0.0.1:8443 ssl reuseport;
        server_name  localhost;

        ssl_certificate     localhost.crt;
        ssl_certificate_key localhost.key;

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;
        add_header X-Violation "[$paranoid_session_violation]" always;
        add_header X-Pid "[$pid]" always;

        paranoid_session on;
        paranoid_fingerprint $http_user_agent;

        location /clear/ {
            paranoid_on_violation clear;
        }

        location /deny/ {
            paranoid_on_violation deny;
        }

        location /log/ {
            paranoid_on_violation log;
        }

        location /bypass {
            paranoid_session_bypass 1;
        }

        location /rotate {
            paranoid_session_rotate on;
        }

        location /destroy {
            paranoid_session_destroy on;
        }

        location /cycle {
            paranoid_key_timeout 1s;
        }

        location /idle {
            paranoid_idle_timeout 2s;
        }

        location /absolute {
            paranoid_absolute_timeout 1s;
        }

        location /app/ {
            proxy_pass http://127.0.0.1:%%PORT_8081%%/;
        }

        location /allow {
            paranoid_session_store_failure allow;
        }

        location = /metrics {
            paranoid_session_metrics;
        }
    }

    # the stand-in application: its control header logs users in and out
    server {
        listen       127.0.0.1:8081;
        server_name  localhost;

        location = /login {
            add_header X-Paranoid-Session "login user=alice";
            return 200 "in\n";
        }

        location = /logout {
            add_header X-Paranoid-Session "logout";
            return 200 "out\n";
        }
    }
}

EOF

$t->write_file('index.html', 'hello');
mkdir $t->testdir() . "/$_" for qw/ clear deny log /;
$t->write_file("$_/index.html", $_) for qw/ clear deny log /;
$t->write_file($_, $_)
	for qw/ bypass rotate destroy cycle idle absolute allow /;
make_cert($t, 'localhost');

memcached_start($t, 11211);
$t->run();

$t->plan(44);

###############################################################################

my $SK = '__Secure-sessionid_https';

# What the test did, by counter; every other counter must be 0.
my %want;
my %pids;

sub did { $want{$_[0]} += $_[1] // 1 }

sub get {
	my ($b, $uri, %o) = @_;
	my $r = $b->get($uri, %o);
	my ($pid) = $r =~ /^X-Pid: \[(\d+)\]/m;
	$pids{$pid} = 1 if $pid;
	return session_vars($r);
}

# The exposition as { 'name{labels}' => value }.
sub scrape {
	my $r = http_get('/metrics');
	my ($body) = $r =~ /\r\n\r\n(.*)\z/s;
	my %m = map { /^(\S+) (\S+)$/ ? ($1 => $2) : () }
		grep { !/^#/ } split /\n/, $body // '';
	return \%m;
}

# The counters this test predicts, compared with the exposition: the
# names that differ, with both values.
sub differences {
	my ($m) = @_;
	my @diff;
	for my $name (sort keys %$m) {
		next if $name =~ /^paranoid_session_store_/;
		my $want = $want{$name} // 0;
		push @diff, "$name: got $m->{$name}, want $want"
			if $m->{$name} != $want;
	}
	push @diff, "$_ missing" for grep { !exists $m->{$_} } sort keys %want;
	return join("\n", @diff);
}

sub counters_match {
	my ($what) = @_;
	my $diff = differences(scrape());
	is($diff, '', "$what: every counter as the test did");
}

sub req { "paranoid_session_requests_total{status=\"$_[0]\"}" }
sub vio { "paranoid_session_violations_total{reason=\"$_[0]\",action=\"$_[1]\"}" }
my $CREATED = 'paranoid_session_sessions_created_total';

# nothing checked yet, and scrapes are not checked requests

counters_match('start');
counters_match('after a scrape');
my $r = http_get('/metrics');
unlike($r, qr/Set-Cookie/i, 'metrics: no session for a scraper');
like($r, qr!^Content-Type: text/plain; version=0\.0\.4!mi,
	'metrics: Prometheus text format');

# first visits and valid requests

my ($news, $valids) = (0, 0);
for my $i (1 .. 6) {
	my $visitor = browser(ua => "M/$i");
	$news++ if get($visitor, '/clear/')->{status} eq 'new';
	did(req('new'));
	did($CREATED);
	for (1 .. $i) {
		$valids++ if get($visitor, '/clear/')->{status} eq 'valid';
	}
	did(req('valid'), $i);
}
is("$news $valids", '6 21', 'visits: 6 new, 21 valid');
counters_match('6 new, 21 valid');

# violations of each reason under each action

for my $action (qw/ clear deny log /) {
	my $uri = "/$action/";

	# fingerprint: the cookies replayed from another User-Agent
	my $victim = browser(ua => 'Victim/1');
	get($victim, $uri);
	did(req('new'));
	did($CREATED);
	my $v = get($victim->clone(ua => 'Thief/1'), $uri);
	is($v->{violation}, 'fingerprint', "$action: fingerprint violation");
	did(req('violation'));
	did(vio('fingerprint', $action));
	did($CREATED) if $action eq 'clear';

	# nonce: another session's nonce with this session's token
	my ($p1, $p2) = (browser(ua => 'Pair/1'), browser(ua => 'Pair/1'));
	get($p1, $uri);
	get($p2, $uri);
	did(req('new'), 2);
	did($CREATED, 2);
	$v = get($p1, $uri, add => { sessionnonce => $p2->cookie('sessionnonce') },
		keep => 0);
	is($v->{violation}, 'nonce', "$action: nonce violation");
	did(req('violation'));
	did(vio('nonce', $action));
	did($CREATED) if $action eq 'clear';

	# secure key: an HTTPS session used without its second key
	my $s = browser(ua => 'Secure/1', ssl => 1);
	get($s, $uri);
	did(req('new'));
	did($CREATED);
	$v = get($s, $uri, drop => [ $SK ], keep => 0);
	is($v->{violation}, 'secure_key', "$action: secure key violation");
	did(req('violation'));
	did(vio('secure_key', $action));
	did($CREATED) if $action eq 'clear';
}
counters_match('3 violations under each action');

# bypass, rotation, destruction

my $life = browser(ua => 'Life/1');
get($life, '/bypass');
did(req('bypass'));
get($life, '/clear/');
did(req('new'));
did($CREATED);
is(get($life, '/rotate')->{status}, 'rotated', 'rotate');
did(req('rotated'));
did('paranoid_session_tokens_rotated_total');
is(get($life, '/destroy')->{status}, 'destroyed', 'destroy');
did(req('destroyed'));
did('paranoid_session_sessions_destroyed_total');
get(browser(), '/destroy');
did(req('destroyed'));    # no session: nothing destroyed
counters_match('bypass, rotate, destroy');

# the application's commands

my $app = browser(ua => 'App/1');
get($app, '/clear/');
did(req('new'));
did($CREATED);
get($app, '/app/login');
did(req('valid'));
did('paranoid_session_application_commands_total{command="login"}');
did('paranoid_session_tokens_rotated_total');
get($app, '/app/logout');
did(req('valid'));
did('paranoid_session_application_commands_total{command="logout"}');
did('paranoid_session_sessions_destroyed_total');
counters_match('login and logout');

# the counts survive a reload, and go on from there

my $old = [ keys %{nginx_workers($t)} ];
$t->reload();
ok(wait_until(20, sub {
	my $w = nginx_workers($t);
	my @p = keys %$w;
	!grep({ $w->{$_} =~ /shutting down/ } @p)
		&& !grep({ my $p = $_; grep { $_ == $p } @$old } @p) && @p == 2;
}), 'reload: new workers');
counters_match('after the reload');

for my $i (1 .. 4) {
	my $n = browser(ua => "R/$i");
	get($n, '/clear/');
	get($n, '/clear/');
}
did(req('new'), 4);
did($CREATED, 4);
did(req('valid'), 4);
counters_match('after the reload, 4 new and 4 valid');

# token cycling and expiry (idle and absolute), after sleeping past them

my $cyc = browser(ua => 'Cycle/1');
my $idle = browser(ua => 'Idle/1');
my $abs = browser(ua => 'Abs/1');
get($_->[0], $_->[1]) for [ $cyc, '/cycle' ], [ $idle, '/idle' ],
	[ $abs, '/absolute' ];
did(req('new'), 3);
did($CREATED, 3);
select undef, undef, undef, 1.2;
is(get($cyc, '/cycle')->{status}, 'rotated', 'cycled: a new token');
did(req('rotated'));
did('paranoid_session_tokens_cycled_total');
is(get($abs, '/absolute')->{status}, 'expired', 'absolute: expired');
did(req('expired'));
did($CREATED);
did('paranoid_session_sessions_expired_total{timeout="absolute"}');
# 3 s idle: past the 2 s timeout, well within the record's tail (memcached
# counts whole seconds)
select undef, undef, undef, 1.8;
is(get($idle, '/idle')->{status}, 'expired', 'idle: expired');
did(req('expired'));
did($CREATED);
did('paranoid_session_sessions_expired_total{timeout="idle"}');
counters_match('cycled, expired');

# both workers counted into the same zone

ok(keys %pids >= 2, 'requests served by both workers: ' . keys %pids);

# the store's own counters agree with each other

my $m = scrape();
my $commands = 0;
$commands += $m->{$_} for grep { /^paranoid_session_store_commands_total/ }
	keys %$m;
ok($commands > 0, "store commands counted: $commands");
is($m->{'paranoid_session_store_latency_seconds_count'}, $commands,
	'one latency observation per command');
is($m->{'paranoid_session_store_latency_seconds_bucket{le="+Inf"}'},
	$commands, 'histogram: +Inf bucket is the count');
ok($m->{'paranoid_session_store_connections'} >= 1, 'connections open');

# the JSON form carries the same values

my $json = http_get('/metrics?format=json');
my $j = eval { decode_json(http_content($json)) };
diag("json: $@") unless $j;
is($j && $j->{requests}{new}, $want{req('new')}, 'json: new');
is($j && $j->{violations}{secure_key}{deny}, 1, 'json: secure key denied');
is($j && $j->{sessions}{expired_idle}, 1, 'json: idle expiry');
like(http_get('/metrics?format=xml'), qr/^HTTP\/1\.1 400/,
	'unknown format: 400');
like(http(<<EOF), qr/^HTTP\/1\.1 405/, 'POST: 405');
POST /metrics HTTP/1.0
Host: localhost
Content-Length: 0

EOF

# memcached stopped: each failed request is one store error and one
# application of the failure policy

my $errors_before = 0;
$errors_before += $m->{$_} for grep { /^paranoid_session_store_errors_total/ }
	keys %$m;

kill 'TERM', memcached_pid(11211);
ok(wait_until(10, sub { !Test::Paranoid::_connect(11211) }),
	'memcached stopped');

my ($denied, $allowed) = (0, 0);
for my $i (1 .. 5) {
	my $v = get(browser(ua => "Down/$i"), '/clear/');
	$denied++ if ($v->{code} // 0) == 503;
	$v = get(browser(ua => "Down/$i"), '/allow');
	$allowed++ if ($v->{status} // '') eq 'error' && $v->{code} == 200;
}
is($denied, 5, 'store down: 503 under deny');
is($allowed, 5, 'store down: passed under allow');
did(req('error'), 10);
did('paranoid_session_store_failures_total{policy="deny"}', 5);
did('paranoid_session_store_failures_total{policy="allow"}', 5);
counters_match('memcached stopped');

$m = scrape();
my $errors = 0;
$errors += $m->{$_} for grep { /^paranoid_session_store_errors_total/ }
	keys %$m;
is($errors - $errors_before, 10, 'one store error per failed request');
is($m->{'paranoid_session_store_errors_total{kind="connect"}'}
	+ $m->{'paranoid_session_store_errors_total{kind="connection"}'},
	10, 'store errors: refused or closed connections');
ok(wait_until(10, sub {
	scrape()->{'paranoid_session_store_connections'} == 0 }),
	'no memcached connection left open');

###############################################################################
