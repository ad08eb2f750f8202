#!/usr/bin/perl

# Tests for paranoid_session module: one of two workers killed (SIGKILL)
# while a load generator keeps using existing sessions, each over its own
# keep-alive connection. The master starts a new worker; only connections
# the killed worker held may lose a request; every session stays valid;
# the error log has the master's line about the killed worker and no other
# alert.

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

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http/)->has_daemon('memcached');

# reuseport: the kernel spreads connections over both workers
$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

daemon off;
worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    paranoid_session_store 127.0.0.1:%%PORT_11211%%;
    # a loaded test machine must not turn into store timeouts
    paranoid_session_store_timeout 2s;

    server {
        listen       127.0.0.1:8080 reuseport;
        server_name  localhost;

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;
        add_header X-Pid "[$pid]" always;

        # no nonces: a response lost with the killed worker cannot leave
        # its session behind
        location /load {
            paranoid_session on;
            paranoid_nonce_timeout off;
        }
    }
}

EOF

$t->write_file('load', 'load');

memcached_start($t, 11211);
$t->run()->todo_alerts();

$t->plan(11);

###############################################################################

my $SESSIONS = 8;

my @sessions;
for my $i (1 .. $SESSIONS) {
	my $b = browser(ua => "KillLoad/$i");
	my $v = session_vars($b->get('/load'));
	push @sessions, { cookies => $b->cookies, ua => "KillLoad/$i",
		uid => $v->{uid} } if ($v->{status} // '') eq 'new';
}
is(scalar @sessions, $SESSIONS, 'sessions created before the load');

my $workers = wait_until(5, sub {
	my $w = nginx_workers($t);
	keys %$w == 2 ? $w : undef;
}) || {};

# Load until both workers hold some of the connections (the kernel picks
# the worker of each connection; a few tries at most).

my ($load, $victim, @on_victim, @elsewhere);
for (1 .. 5) {
	$load = Test::Paranoid::Load->start(sessions => \@sessions,
		peers => [ '127.0.0.1:' . port(8080) ], uri => '/load');
	my $c = $load->wait_sent(10 * $SESSIONS, 10);
	my @pids = map { (values %{$_->{pids}})[0] // '' } @{$c->{sessions}};
	$victim = $pids[0];
	@on_victim = grep { $pids[$_] eq $victim } 0 .. $#pids;
	@elsewhere = grep { $pids[$_] ne $victim } 0 .. $#pids;
	last if @elsewhere && $workers->{$victim}
		&& grep { $workers->{$_} } map { $pids[$_] } @elsewhere;
	$load->stop;
	$load = undef;
}
ok($load, 'connections held by both workers')
	or die "no load on both workers\n";

# The kill; then wait for the master to start its replacement.

$load->phase('kill');
kill 'KILL', $victim;
my $after = wait_until(10, sub {
	my $w = nginx_workers($t);
	keys %$w == 2 && !$w->{$victim} ? $w : undef;
});
ok($after, 'master started a new worker');

$load->phase('after');
$load->wait_sent(40 * $SESSIONS, 10);
my $report = $load->stop;
my $kill = Test::Paranoid::Load::total($report, 'start', 'kill');
my $later = Test::Paranoid::Load::total($report, 'after');
my $all = Test::Paranoid::Load::total($report);
note(sprintf '%.1f s; %d of %d connections on the killed worker; '
	. 'before and during the kill: %s; after: %s', $report->{elapsed},
	scalar @on_victim, $SESSIONS, Test::Paranoid::Load::summary($kill),
	Test::Paranoid::Load::summary($later));

# Before and during the kill, a request may be lost only on a connection
# the killed worker held, at most one per connection: lost in flight (a
# failure) or found closed when reused (retried on a new connection).

my @elsewhere_hit = grep { $_->{pid} ne $victim } @{$report->{samples}};
is(scalar @elsewhere_hit, 0, 'no loss on the surviving worker')
	or diag(join "\n", map { Test::Paranoid::Load::sample_line($_) }
		@elsewhere_hit);
ok($kill->{failed} + $kill->{retried} <= @on_victim,
	'at most one request lost or retried per connection of the killed one');
is($all->{bad}, 0, 'every answer a 200 for the same session')
	or diag(Test::Paranoid::Load::summary($all));

# After the new worker is up: every request served, by the live workers.

is($later->{failed} + $later->{retried}, 0, 'after the kill: nothing lost');
my @served = keys %{$later->{pid}};
ok(@served && !grep({ !$after->{$_} } @served),
	'after the kill: answered by the live workers');

# the sessions go on

my $going = 0;
for my $i (0 .. $#sessions) {
	my $s = $report->{sessions}[$i] or next;
	my $b = browser(ua => $sessions[$i]{ua})->set(%{$s->{cookies}});
	my $v = session_vars($b->get('/load'));
	$going++ if ($v->{status} // '') eq 'valid'
		&& ($v->{uid} // '') eq $sessions[$i]{uid};
}
is($going, $SESSIONS, 'every session still valid after the kill');

$t->stop();

# The only alert: the master reporting the killed worker.

my @alerts = $t->read_file('error.log') =~ /^.*\[(?:alert|crit|emerg)\].*$/mg;
my $killed = qr/worker process \Q$victim\E exited on signal 9\r?$/;
is(scalar(grep { $_ =~ $killed } @alerts), 1,
	'error log: the master reports the killed worker');
is(join("\n", grep { $_ !~ $killed } @alerts), '', 'error log: no other alert');

###############################################################################
