#!/usr/bin/perl

# Tests for paranoid_session module: two nginx instances (two test objects,
# two prefixes, two ports) sharing one memcached, the secret file and the
# key prefix. A session started on one continues on the other; nonces
# renewed on one are accepted on the other, within the window only; a
# stolen cookie (another User-Agent) or a stale nonce is caught on either;
# a session destroyed by one is gone on the other; under load alternating
# between the two every request stays valid. A location with another key
# prefix shows the sharing is not taken for granted.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx;
use Test::Paranoid;
use Test::Paranoid::Load;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http/)->has_daemon('memcached');
my $t2 = Test::Nginx->new();

# one configuration, each host its own port and name
my $conf = <<'EOF';

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    paranoid_session_store 127.0.0.1:%%PORT_11211%%;
    paranoid_session_secret_file secret.key;
    paranoid_session_key_prefix two:;
    # a loaded test machine must not turn into store timeouts
    paranoid_session_store_timeout 2s;

    server {
        listen       127.0.0.1:%%PORT%%;
        server_name  localhost;

        add_header X-Host "[%%HOST%%]" always;
        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;
        add_header X-Violation "[$paranoid_session_violation]" always;

        location /s {
            paranoid_session on;
            paranoid_nonce_timeout 0;
            paranoid_nonce_window 1;
            paranoid_nonce_window_timeout 5s;
        }

        location /logout {
            paranoid_session on;
            paranoid_session_destroy on;
        }

        location /load {
            paranoid_session on;
            paranoid_session_key_prefix load:;
            paranoid_nonce_timeout 0;
        }

        location /other {
            paranoid_session on;
            paranoid_session_key_prefix other:;
        }
    }
}

EOF

my %port = (a => 8080, b => 8081);
for ([ a => $t ], [ b => $t2 ]) {
	my ($name, $obj) = @$_;
	my $port = $port{$name};
	my $c = $conf =~ s/%%PORT%%/%%PORT_$port%%/r =~ s/%%HOST%%/$name/r;
	$obj->write_file_expand('nginx.conf', $c);
	$obj->write_file('secret.key', join '', map { chr(97 + $_ % 26) } 1 .. 40);
	$obj->write_file($_, $_) for qw/ s load logout other /;
}

memcached_start($t, 11211);
$t->run();
$t2->run();

# each object checks its own log for alerts when it goes: two more tests
$t->plan(21 + 2);

###############################################################################

# GET $uri with browser $b on host a or b.
sub on {
	my ($host, $b, $uri, %opts) = @_;
	my $r = http($b->request_text($uri, %opts),
		PeerAddr => '127.0.0.1:' . port($port{$host}));
	$b->absorb($r) unless defined $opts{keep} && !$opts{keep};
	return $r;
}

sub vars { return session_vars($_[0]) }
sub host_of { return ($_[0] // '') =~ /^X-Host: \[(\w)\]/m ? $1 : '' }

# started on a, continued on b

my $b = browser();
my $r = on(a => $b, '/s');
my $uid = vars($r)->{uid} // '';
is(vars($r)->{status}, 'new', 'a: new session');
$r = on(b => $b, '/s');
is(host_of($r), 'b', 'b answers');
is(vars($r)->{status}, 'valid', 'b: session from a valid');
is(vars($r)->{uid}, $uid, 'b: same uid');

# the other key prefix does not see it: not shared by accident

is(vars(on(b => $b, '/other', keep => 0))->{status}, 'new',
	'b, other key prefix: unknown there');

# nonces renewed on one host, accepted on the other (timeout 0: a new
# nonce on every request)

my @nonces = ($b->cookie('sessionnonce') // '');
my ($valid, $renewed) = (0, 0);
for my $host (qw/ a b a b a b /) {
	$r = on($host => $b, '/s');
	my $n = set_cookies($r)->{sessionnonce}{value} // '';
	$valid++ if vars($r)->{status} eq 'valid' && vars($r)->{uid} eq $uid
		&& host_of($r) eq $host;
	$renewed++ if length $n && !grep { $_ eq $n } @nonces;
	push @nonces, $n;
}
is($valid, 6, 'alternating hosts: every request valid, same uid');
is($renewed, 6, 'alternating hosts: a new nonce each time');

# the nonce renewed by b (the last request) is current on a; the one b
# superseded is in the window on a; the one before it is refused on b

$r = on(a => $b, '/s', add => { sessionnonce => $nonces[-2] }, keep => 0);
is(vars($r)->{status}, 'valid', 'a: previous nonce (renewed on b) in window');
$r = on(b => $b->clone, '/s', add => { sessionnonce => $nonces[-3] });
is(vars($r)->{violation}, 'nonce', 'b: older nonce refused');
$r = on(a => $b, '/s');
isnt(vars($r)->{uid}, $uid, 'a: session refused on b is gone on a');

# a stolen cookie: another User-Agent, caught on either host

$b = browser();
$uid = vars(on(a => $b, '/s'))->{uid};
$r = on(b => $b->clone(ua => 'Thief/1.0'), '/s');
is(vars($r)->{violation}, 'fingerprint', 'made on a, stolen to b: caught');
isnt(vars(on(a => $b, '/s'))->{uid}, $uid,
	'made on a, stolen to b: destroyed on a too');

$b = browser();
$uid = vars(on(b => $b, '/s'))->{uid};
$r = on(a => $b->clone(ua => 'Thief/1.0'), '/s');
is(vars($r)->{violation}, 'fingerprint', 'made on b, stolen to a: caught');
isnt(vars(on(b => $b, '/s'))->{uid}, $uid, 'made on b, stolen to a: gone on b');

# the owner's User-Agent on the other host is not a theft

$b = browser();
$uid = vars(on(a => $b, '/s'))->{uid};
$r = on(b => $b->clone, '/s');
is(vars($r)->{uid}, $uid, 'same client on the other host: no violation');

# a stale nonce replayed from a copy, on the other host

$b = browser();
$uid = vars(on(b => $b, '/s'))->{uid};
my $stale = $b->cookie('sessionnonce');
on(b => $b, '/s') for 1 .. 2;
$r = on(a => $b->clone, '/s', add => { sessionnonce => $stale });
is(vars($r)->{violation}, 'nonce', 'stale nonce from b replayed on a: caught');

# destroyed on one host, gone on the other

$b = browser();
$uid = vars(on(a => $b, '/s'))->{uid};
my $copy = $b->clone;
$r = on(b => $b, '/logout');
is(vars($r)->{status}, 'destroyed', 'logout on b');
$r = on(a => $copy, '/s');
is(vars($r)->{status}, 'new', 'a: the destroyed session is not valid');

# under load (a location with its own key prefix): sessions alternating
# between the hosts on every request, one keep-alive connection per
# session and host, a new nonce each time

my @sessions;
for my $i (1 .. 6) {
	my $b = browser(ua => "TwoHosts/$i");
	my $v = vars(on($i % 2 ? 'a' : 'b', $b, '/load'));
	push @sessions, { cookies => $b->cookies, ua => "TwoHosts/$i",
		uid => $v->{uid} };
}
my $load = Test::Paranoid::Load->start(sessions => \@sessions, uri => '/load',
	peers => [ map { '127.0.0.1:' . port($_) } 8080, 8081 ],
	renew => 'sessionnonce');
$load->wait_sent(1200, 15);
my $report = $load->stop;
my $all = Test::Paranoid::Load::total($report);
note(sprintf 'load: %.1f s, %s', $report->{elapsed},
	Test::Paranoid::Load::summary($all));
ok($all->{sent} >= 1200, "load: $all->{sent} requests");
is($all->{ok}, $all->{sent}, 'load: every request valid, a new nonce')
	or diag(Test::Paranoid::Load::summary($all), "\n",
		join "\n", map { Test::Paranoid::Load::sample_line($_) }
			@{$report->{samples}});

# one record per session in memcached, whichever host served it

my @keys = grep { /^load:/ } memcached_keys(11211);
is(scalar @keys, scalar @sessions, 'load: one record per session')
	or diag(join "\n", @keys);

$t2->stop();
$t->stop();

###############################################################################
