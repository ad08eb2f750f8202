#!/usr/bin/perl

# Tests for paranoid_session module: the application's command is applied
# before the client can act on it. A real upstream (a daemon started here)
# answers /app/login?user=ID with "X-Paranoid-Session: login user=ID",
# /app/logout with "logout" and /app/everywhere with "logout-everywhere".
# The client reads only the response headers and at once sends its next
# request on a new connection: to the other worker of a 2-worker nginx
# (whichever the kernel picks: reuseport spreads connections), or to a
# second nginx host sharing the memcached. After a login the new token is
# valid with the same uid and the user, and the old token is dead; after a
# logout the old cookies are dead; after a logout-everywhere the user's
# other session is dead. No miss in 1,000 login and logout pairs.

###############################################################################

use warnings;
use strict;

use Test::More;

use IO::Socket::INET;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx;
use Test::Paranoid;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Nginx->new()->has(qw/http proxy/)->has_daemon('memcached');
my $t2 = Test::Nginx->new();

# one configuration, each host its own port and name
my $conf = <<'EOF';

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
        # a listening socket per worker: the kernel spreads new connections
        # over the two workers
        listen       127.0.0.1:%%PORT%% reuseport;
        server_name  localhost;

        add_header X-Host "[%%HOST%%]" always;
        add_header X-Pid "[$pid]" always;
        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;
        add_header X-Violation "[$paranoid_session_violation]" always;
        add_header X-User "[$paranoid_session_user]" always;

        location /s {
            paranoid_session on;
        }

        location /app/ {
            paranoid_session on;
            proxy_pass http://127.0.0.1:%%PORT_8082%%;
        }
    }
}

EOF

my %port = (a => 8080, b => 8081);
for ([ a => $t ], [ b => $t2 ]) {
	my ($name, $obj) = @$_;
	my $c = $conf =~ s/%%PORT%%/%%PORT_$port{$name}%%/r =~ s/%%HOST%%/$name/r;
	$obj->write_file_expand('nginx.conf', $c);
	$obj->write_file('secret.key', join '', map { chr(97 + $_ % 26) } 1 .. 40);
	$obj->write_file('s', 's');
}

memcached_start($t, 11211);
$t->run_daemon(\&app_daemon, port(8082));
$t->waitforsocket('127.0.0.1:' . port(8082));
$t->run();
$t2->run();

# each object checks its own log for alerts when it goes: two more tests
$t->plan(19 + 2);

###############################################################################

# Login and logout pairs on two workers of host a, then across the hosts,
# and logout-everywhere pairs across the hosts.
my ($CYCLES_WORKERS, $CYCLES_HOSTS, $EVERYWHERE) = (250, 250, 100);

# Sends $req to $host on a new connection; returns the response head as
# soon as it has arrived, and the socket with the rest unread.
sub head_only {
	my ($host, $req) = @_;
	my $s = IO::Socket::INET->new(Proto => 'tcp',
		PeerAddr => '127.0.0.1:' . port($port{$host})) or return ('');
	$s->autoflush(1);
	my $head = '';
	local $SIG{ALRM} = sub { die "timeout\n" };
	alarm 8;
	eval {
		print $s $req;
		while ($head !~ /\r\n\r\n/) {
			sysread($s, $head, 4096, length $head) or last;
		}
	};
	alarm 0;
	return ($head, $s);
}

# Reads the rest of a response and closes its connection.
sub drain {
	my ($s) = @_;
	return unless $s;
	local $SIG{ALRM} = sub { die "timeout\n" };
	alarm 8;
	eval { local $/; my $rest = <$s>; };
	alarm 0;
	close $s;
}

# GET $uri with browser $b on host a or b, on a new connection.
sub on {
	my ($host, $b, $uri, %opts) = @_;
	my $r = http($b->request_text($uri, %opts),
		PeerAddr => '127.0.0.1:' . port($port{$host}));
	$b->absorb($r) unless defined $opts{keep} && !$opts{keep};
	return $r;
}

# The session variables, the user, the worker's pid and the host.
sub vars {
	my ($r) = @_;
	my $v = session_vars($r);
	my $head = ($r // '') =~ /^(.*?)\r\n\r\n/s ? $1 : ($r // '');
	for (qw/ User Pid Host /) {
		$v->{lc $_} = ($head =~ /^X-$_: \[([^\]\r\n]*)\]\r?$/mi)[0] // '';
	}
	$v->{$_} //= '' for qw/ status uid violation /;
	$v->{code} //= '';
	return $v;
}

sub other { return $_[0] eq 'a' ? 'b' : 'a' }

my %count;    # what was counted, by name
my @misses;   # the first few misses, described

sub miss {
	my ($what, $n, $v) = @_;
	$count{"miss $what"}++;
	push @misses, sprintf '%s #%d: code %s status %s uid %s user %s pid %s '
		. 'host %s', $what, $n, map { $v->{$_} } qw/ code status uid user
		pid host / if @misses < 10;
}

# One login pair and one logout pair with browser $b, which holds an
# anonymous session: the command on $cmd host, each next request on $next
# host. Leaves $b with a new anonymous session (the one the request after
# the logout started).
sub cycle {
	my ($n, $b, $cmd, $next) = @_;
	my $user = "u$n";
	my %old = %{$b->cookies};

	# login, then at once the new cookies; then the old ones

	my ($head, $s) = head_only($cmd, $b->request_text("/app/login?user=$user"));
	$b->absorb($head);
	my $login = vars($head);
	my $new_token = ($b->cookie('sessionid') // '') ne ($old{sessionid} // '');
	my $r = on($next, $b, '/s');
	drain($s);
	my $v = vars($r);
	$count{'login pairs'}++;
	$count{'login pairs, other worker'}++
		if $login->{pid} ne $v->{pid} && $login->{host} eq $v->{host};
	$count{'login pairs, other host'}++ if $login->{host} ne $v->{host};
	miss('login not applied', $n, $login)
		unless $login->{code} eq '200' && $login->{status} eq 'rotated'
			&& $login->{user} eq $user && $new_token;
	miss('new token not valid', $n, $v)
		unless $v->{status} eq 'valid' && $v->{uid} eq $login->{uid}
			&& $v->{user} eq $user;

	$v = vars(on($next, $b, '/s', cookies => \%old, keep => 0));
	miss('old token alive', $n, $v)
		unless $v->{status} eq 'new' && $v->{user} eq '';

	# logout, then at once the cookies it expired

	($head, $s) = head_only($cmd, $b->request_text('/app/logout'));
	my $logout = vars($head);
	$r = on($next, $b, '/s');
	drain($s);
	$v = vars($r);
	$count{'logout pairs'}++;
	$count{'logout pairs, other worker'}++
		if $logout->{pid} ne $v->{pid} && $logout->{host} eq $v->{host};
	$count{'logout pairs, other host'}++ if $logout->{host} ne $v->{host};
	miss('logout not applied', $n, $logout)
		unless $logout->{code} eq '200' && $logout->{status} eq 'destroyed';
	miss('logged-out session alive', $n, $v)
		unless $v->{status} eq 'new' && $v->{user} eq '';
}

# two workers of host a

my $b = browser();
on(a => $b, '/s');
cycle($_, $b, 'a', 'a') for 1 .. $CYCLES_WORKERS;

my %workers = %count;
%count = ();
my @workers_misses = splice @misses;
note(join "\n", 'two workers:', map { "  $_: $workers{$_}" } sort keys %workers);

is($workers{'login pairs'} + $workers{'logout pairs'}, 2 * $CYCLES_WORKERS,
	'workers: pairs made');
is($workers{'miss login not applied'} // 0, 0, 'workers: every login applied');
is($workers{'miss new token not valid'} // 0, 0,
	'workers: new token valid at once, same uid, the user')
	or diag(join "\n", @workers_misses);
is($workers{'miss old token alive'} // 0, 0, 'workers: old token dead at once');
is($workers{'miss logout not applied'} // 0, 0,
	'workers: every logout applied');
is($workers{'miss logged-out session alive'} // 0, 0,
	'workers: logged-out session dead at once')
	or diag(join "\n", @workers_misses);
ok(($workers{'login pairs, other worker'} // 0) > 0,
	'workers: logins followed on the other worker');
ok(($workers{'logout pairs, other worker'} // 0) > 0,
	'workers: logouts followed on the other worker');

# two hosts: the command on one, the next request on the other

$b = browser();
on(a => $b, '/s');
for my $n ($CYCLES_WORKERS + 1 .. $CYCLES_WORKERS + $CYCLES_HOSTS) {
	my $cmd = $n % 2 ? 'a' : 'b';
	cycle($n, $b, $cmd, other($cmd));
}

my %hosts = %count;
%count = ();
my @hosts_misses = splice @misses;
note(join "\n", 'two hosts:', map { "  $_: $hosts{$_}" } sort keys %hosts);

is(($hosts{'login pairs, other host'} // 0)
	+ ($hosts{'logout pairs, other host'} // 0), 2 * $CYCLES_HOSTS,
	'hosts: pairs made, each across the hosts');
is($hosts{'miss login not applied'} // 0, 0, 'hosts: every login applied');
is($hosts{'miss new token not valid'} // 0, 0,
	'hosts: new token valid at once, same uid, the user')
	or diag(join "\n", @hosts_misses);
is($hosts{'miss old token alive'} // 0, 0, 'hosts: old token dead at once');
is($hosts{'miss logout not applied'} // 0, 0, 'hosts: every logout applied');
is($hosts{'miss logged-out session alive'} // 0, 0,
	'hosts: logged-out session dead at once')
	or diag(join "\n", @hosts_misses);

my $pairs = $workers{'login pairs'} + $workers{'logout pairs'}
	+ $hosts{'login pairs'} + $hosts{'logout pairs'};
my $misses = 0;
$misses += $workers{$_} for grep { /^miss / } keys %workers;
$misses += $hosts{$_} for grep { /^miss / } keys %hosts;
note("login and logout pairs: $pairs, misses: $misses");
is("$misses of $pairs", '0 of ' . 2 * ($CYCLES_WORKERS + $CYCLES_HOSTS),
	'no miss in the login and logout pairs');

# logout-everywhere: a user's sessions X on one host and Y on the other;
# Y ends them all, and X at once on the other host is dead

for my $n (1 .. $EVERYWHERE) {
	my $user = "e$n";
	my $cmd = $n % 2 ? 'a' : 'b';
	my ($x, $y) = (browser(ua => 'X/1.0'), browser(ua => 'Y/1.0'));
	on(other($cmd) => $x, '/s');
	on(other($cmd) => $x, "/app/login?user=$user");
	on($cmd => $y, '/s');
	on($cmd => $y, "/app/login?user=$user");
	my ($head, $s) = head_only($cmd, $y->request_text('/app/everywhere'));
	my $r = on(other($cmd) => $x, '/s');
	drain($s);
	my $v = vars($r);
	$count{'everywhere pairs'}++;
	miss('everywhere not applied', $n, vars($head))
		unless vars($head)->{status} eq 'destroyed';
	miss('ended session alive', $n, $v)
		unless $v->{status} eq 'new' && $v->{user} eq '';
}

my $ended_misses = 0;
$ended_misses += $count{$_} for grep { /^miss / } keys %count;
note("logout-everywhere pairs: $count{'everywhere pairs'}, "
	. "misses: $ended_misses");
is($count{'everywhere pairs'}, $EVERYWHERE, 'everywhere: pairs made');
is($count{'miss everywhere not applied'} // 0, 0,
	'everywhere: every command applied');
is($count{'miss ended session alive'} // 0, 0,
	'everywhere: the other session dead at once')
	or diag(join "\n", @misses);

# nothing went wrong on the way

my $errors = join "\n", grep { /\[(?:error|crit|emerg)\]/ }
	map { split /\n/, $_->read_file('error.log') } $t, $t2;
is($errors, '', 'no errors logged');

$t2->stop();
$t->stop();

###############################################################################

# The application: an HTTP upstream on $port that says what happened in
# X-Paranoid-Session.
sub app_daemon {
	my ($port) = @_;
	my $server = IO::Socket::INET->new(
		Proto => 'tcp',
		LocalAddr => "127.0.0.1:$port",
		Listen => 64,
		ReuseAddr => 1,
	) or die "Can't create listening socket: $!\n";

	local $SIG{PIPE} = 'IGNORE';

	while (my $client = $server->accept()) {
		$client->autoflush(1);
		my $uri = '';
		while (my $line = <$client>) {
			$uri = $1 if $uri eq '' && $line =~ m!^GET (\S+)!;
			last if $line =~ /^\r?\n\z/;
		}
		my $command = $uri =~ m!^/app/login\?user=(\w+)\z! ? "login user=$1"
			: $uri eq '/app/logout' ? 'logout'
			: $uri eq '/app/everywhere' ? 'logout-everywhere'
			: undef;
		my $body = "app\n";
		print $client "HTTP/1.1 200 OK\r\n"
			. "Content-Type: text/plain\r\n"
			. 'Content-Length: ' . length($body) . "\r\n"
			. ($command ? "X-Paranoid-Session: $command\r\n" : '')
			. "Connection: close\r\n\r\n"
			. $body;
		close $client;
	}
}

###############################################################################
