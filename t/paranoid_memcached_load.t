#!/usr/bin/perl

# Tests for paranoid_session module: memcached killed and started again on
# the same port while two load generators keep sessions busy, one on a
# location with paranoid_session_store_failure deny, one with allow. While
# memcached is down every request gets the failure policy (503, or a pass
# with status "error"); once it is back every session starts afresh (its
# old cookie gets a new session, once) and nothing fails; no worker dies.
# (paranoid_store_restart.t covers the same without load.)

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx;
use Test::Paranoid;
use Test::Paranoid::Load qw/ nginx_workers wait_until /;
use IO::Socket::INET;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http/)->has_daemon('memcached');

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

daemon off;
worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    paranoid_session_store 127.0.0.1:%%PORT_11211%%;
    # a loaded test machine must not turn into store timeouts; a stopped
    # memcached refuses at once
    paranoid_session_store_timeout 2s;

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;
        add_header X-Pid "[$pid]" always;

        location /deny {
            paranoid_session on;
        }
        location /allow {
            paranoid_session on;
            paranoid_session_store_failure allow;
        }
    }
}

EOF

$t->write_file('deny', 'deny');
$t->write_file('allow', 'allow');

memcached_start($t, 11211);
$t->run();

$t->plan(15);

###############################################################################

my $SESSIONS = 4;    # per location
my $peer = '127.0.0.1:' . port(8080);

my %sessions;
for my $uri (qw{ /deny /allow }) {
	for my $i (1 .. $SESSIONS) {
		my $b = browser(ua => "StoreLoad$uri/$i");
		my $v = session_vars($b->get($uri));
		push @{$sessions{$uri}}, { cookies => $b->cookies,
			ua => "StoreLoad$uri/$i", uid => $v->{uid} }
			if ($v->{status} // '') eq 'new';
	}
}
is(scalar(@{$sessions{'/deny'}}) + scalar(@{$sessions{'/allow'}}),
	2 * $SESSIONS, 'sessions created before the load');

my $workers = wait_until(5, sub {
	my $w = nginx_workers($t);
	keys %$w == 2 ? $w : undef;
}) || {};

my %load = map { $_ => Test::Paranoid::Load->start(uri => $_,
	sessions => $sessions{$_}, peers => [ $peer ]) } qw{ /deny /allow };
$_->wait_sent(20 * $SESSIONS, 10) for values %load;

# memcached goes away: once nothing listens any more, a new phase

$_->phase('stopping') for values %load;
my $pid = memcached_pid(11211);
kill 'TERM', $pid if $pid;
wait_until(10, sub { !memcached_pid(11211)
	&& !IO::Socket::INET->new("127.0.0.1:" . port(11211)) });
$_->phase('down') for values %load;
$_->wait_sent(20 * $SESSIONS, 10) for values %load;

# and comes back on the same port

$_->phase('starting') for values %load;
memcached_start($t, 11211);
$_->phase('up') for values %load;
$_->wait_sent(40 * $SESSIONS, 10) for values %load;

my %report = map { $_ => $load{$_}->stop } keys %load;
my %phase;
for my $uri (keys %report) {
	$phase{$uri}{$_} = Test::Paranoid::Load::total($report{$uri}, $_)
		for qw/ start stopping down starting up /;
	note("$uri $_: " . Test::Paranoid::Load::summary($phase{$uri}{$_}))
		for qw/ start stopping down starting up /;
}
note(sprintf 'load ran %.1f s', $report{'/deny'}{elapsed});

# before: all well

my $before = $phase{'/deny'}{start}{ok} + $phase{'/allow'}{start}{ok};
is($before, $phase{'/deny'}{start}{sent} + $phase{'/allow'}{start}{sent},
	'before: every request valid');

# down: deny answers 503, allow passes with "error", nothing else

my $down = $phase{'/deny'}{down};
ok($down->{sent} > 0, "down: deny requests sent ($down->{sent})");
is($down->{code}{503} // 0, $down->{sent}, 'down: deny answers 503');
is($down->{failed}, 0, 'down: deny, no connection lost');

$down = $phase{'/allow'}{down};
ok($down->{sent} > 0, "down: allow requests sent ($down->{sent})");
is($down->{code}{200} // 0, $down->{sent}, 'down: allow answers 200');
is($down->{status}{error} // 0, $down->{sent}, 'down: allow status error');

# up again: no failure, no 5xx; every session got exactly one new session
# for its old cookie, then stays valid with it

for my $uri (qw{ /deny /allow }) {
	my $up = $phase{$uri}{up};
	my $fivexx = grep { /^5/ } map { ($_) x $up->{code}{$_} }
		keys %{$up->{code}};
	my $wrong = join ',', grep { !/^(new|valid)$/ } keys %{$up->{status}};
	ok($up->{sent} > 0 && $up->{failed} == 0 && $fivexx == 0
		&& $wrong eq '', "up: $uri served without failure")
		or diag(Test::Paranoid::Load::summary($up));
}

for my $uri (qw{ /deny /allow }) {
	my @s = @{$report{$uri}{sessions}};
	my $renewed = grep { $_->{news} == 1 && $_->{uid} ne $_->{first_uid}
		&& $_->{status} eq 'valid' } @s;
	is($renewed, $SESSIONS, "up: $uri, each session renewed once");
}

# memcached holds exactly the renewed sessions

my @keys = memcached_keys(11211);
is(scalar @keys, 2 * $SESSIONS, 'memcached holds the new sessions');

# no worker died

my $now = nginx_workers($t);
is(join(',', sort keys %$now), join(',', sort keys %$workers),
	'same workers throughout');

$t->stop();

my $log = $t->read_file('error.log');
unlike($log, qr/\[(alert|crit|emerg)\]|exited on signal/,
	'error log: no crash or alert');

###############################################################################
