#!/usr/bin/perl

# Tests for paranoid_session module: nginx reloaded ten times while a load
# generator keeps using existing sessions (a new nonce on every request,
# tokens cycled every second). Every request gets its answer, every answer
# is a 200 for the same session with a new nonce (none was lost), each
# reload's new workers take over, and the sessions are still valid
# afterwards. A request may be retried once on a new connection when the
# old worker closed its idle keep-alive connection: at most one per
# connection and reload.

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

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

daemon off;
worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    paranoid_session_store 127.0.0.1:%%PORT_11211%%;
    paranoid_session_secret_file secret.key;
    # a loaded test machine must not turn into store timeouts
    paranoid_session_store_timeout 2s;

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;
        add_header X-Violation "[$paranoid_session_violation]" always;
        add_header X-Pid "[$pid]" always;

        location /load {
            paranoid_session on;
            paranoid_nonce_timeout 0;
            paranoid_key_timeout 1s;
        }
    }
}

EOF

$t->write_file('secret.key', join('', map { chr(65 + $_ % 26) } 1 .. 48));
$t->write_file('load', 'load');

memcached_start($t, 11211);
$t->run();

$t->plan(11);

###############################################################################

my $RELOADS = 10;
my $SESSIONS = 6;

# Two workers, none of them shutting down, none of them in @$old.
sub settled {
	my ($t, $old) = @_;
	my $w = nginx_workers($t);
	my @pids = keys %$w;
	return undef if grep { $w->{$_} =~ /shutting down/ } @pids;
	return undef if grep { my $p = $_; grep { $_ == $p } @$old } @pids;
	return @pids == 2 ? [ sort @pids ] : undef;
}

my @sessions;
for my $i (1 .. $SESSIONS) {
	my $b = browser(ua => "ReloadLoad/$i");
	my $v = session_vars($b->get('/load'));
	push @sessions, { cookies => $b->cookies, ua => "ReloadLoad/$i",
		uid => $v->{uid} } if ($v->{status} // '') eq 'new';
}
is(scalar @sessions, $SESSIONS, 'sessions created before the load');

my $gen = wait_until(5, sub { settled($t, []) }) || [];
my $load = Test::Paranoid::Load->start(sessions => \@sessions,
	peers => [ '127.0.0.1:' . port(8080) ], uri => '/load',
	renew => 'sessionnonce');
$load->wait_sent(50, 10);

# Each reload: the old workers noted, SIGHUP, then wait until two new
# workers run and every old one has exited; then the load runs a while
# (at least 60 requests and 0.3 s) counted as that generation's phase.

my ($reloaded, $served_by_new, @gens) = (0, 0);
for my $i (1 .. $RELOADS) {
	my $old = $gen;
	$load->phase("reload$i");
	$t->reload();
	$gen = wait_until(20, sub { settled($t, $old) }) or last;
	$reloaded++;
	push @gens, $gen;

	$load->phase("gen$i");
	my $since = time;
	$load->wait_sent(60, 10);
	select undef, undef, undef, 0.3 - (time - $since) if time - $since < 0.3;
	my $c = $load->counts;
	my @pids = keys %{$c->{phases}{"gen$i"}{pid} || {}};
	$served_by_new++ if @pids
		&& !grep { my $p = $_; !grep { $_ == $p } @$gen } @pids;
}

my $report = $load->stop;
my $all = Test::Paranoid::Load::total($report);

is($reloaded, $RELOADS, 'each reload: new workers up, old ones gone');
is($served_by_new, $RELOADS,
	'after each reload only the new workers answer');
ok($all->{sent} >= $RELOADS * 60, "load ran: $all->{sent} requests");
is($all->{failed}, 0, 'no request failed');
is($all->{bad}, 0, 'every answer a 200 for the same session, a new nonce');
ok($all->{retried} <= $SESSIONS * $RELOADS,
	"at most one retry per connection and reload ($all->{retried})");
diag(Test::Paranoid::Load::summary($all), "\n",
	join("\n", map { Test::Paranoid::Load::sample_line($_) }
		@{$report->{samples}})) if $all->{failed} || $all->{bad};
note(sprintf '%d reloads, %.1f s, %s', $reloaded, $report->{elapsed},
	Test::Paranoid::Load::summary($all));
ok(($all->{status}{rotated} // 0) > 0, 'tokens cycled under the load');

# the sessions go on after the load, with the cookies it left them

my $going = 0;
for my $i (0 .. $#sessions) {
	my $s = $report->{sessions}[$i] or next;
	my $b = browser(ua => $sessions[$i]{ua})->set(%{$s->{cookies}});
	my $r = $b->get('/load');
	my $v = session_vars($r);
	# a new nonce only if the one presented was current
	$going++ if ($v->{status} // '') =~ /^(valid|rotated)\z/
		&& ($v->{uid} // '') eq $sessions[$i]{uid}
		&& set_cookies($r)->{sessionnonce};
}
is($going, $SESSIONS, 'every session still valid and current afterwards');

$t->stop();

my $log = $t->read_file('error.log');
my $reconf = () = $log =~ /\[notice\] \d+#\d+: reconfiguring\r?$/mg;
is($reconf, $RELOADS, 'error log: one reconfiguration per reload');
unlike($log, qr/\[(error|crit|alert|emerg)\]|exited on signal/,
	'error log: no error, crash or alert');

###############################################################################
