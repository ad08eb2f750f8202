#!/usr/bin/perl

# Tests for paranoid_session module: memcached fails while the
# application's command is applied. The access phase has succeeded and the
# request is at the application when memcached goes away, and the
# application answers "login user=alice". A proxy between nginx and
# memcached plays the failure: it stops (drops its connections and refuses
# new ones), or closes the connection on the command's first store
# command, or in the middle of the command (on the new record's write, or
# on the old token's delete once the new record is written). The response
# does not claim success: under paranoid_session_store_failure deny the
# client gets a 503, under allow the application's response with status
# "error"; neither sets a new token nor binds the user, one error line is
# logged, and the session the client had goes on unchanged.

###############################################################################

use warnings;
use strict;

use Test::More;

use IO::Select;
use IO::Socket::INET;
use POSIX qw/ WNOHANG /;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx qw/ :DEFAULT http_start http_end /;
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

    # memcached through the proxy that fails on demand; tokens only, so
    # that nothing but the command writes while the request is pending
    paranoid_session_store 127.0.0.1:%%PORT_8082%%;
    paranoid_session_store_timeout 1s;
    paranoid_nonce_timeout off;

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

        location /deny/ {
            paranoid_session_store_failure deny;
            proxy_pass http://app/;
        }

        location /allow/ {
            paranoid_session_store_failure allow;
            proxy_pass http://app/;
        }
    }
}

EOF

my $DIR = $t->testdir();
my $BREAK = "$DIR/break";
my $LOG = "$DIR/error.log";

memcached_start($t, 11211);
$t->run_daemon(\&breaker, port(8082), port(11211), $BREAK);
$t->run_daemon(\&app_daemon, port(8081), $DIR);
$t->waitforsocket('127.0.0.1:' . port(8082));
$t->waitforsocket('127.0.0.1:' . port(8081));
$t->run();

$t->plan(72);

###############################################################################

# error.log from byte $from on, and its size.
sub log_since {
	my ($from) = @_;
	open my $fh, '<', $LOG or return '';
	seek $fh, $from, 0;
	local $/;
	return scalar(<$fh>) // '';
}

sub log_size { return -s $LOG // 0 }

sub write_to {
	my ($file, $text) = @_;
	open my $fh, '>', $file or die "Can't write $file: $!\n";
	print $fh $text;
	close $fh;
}

# Waits (at most 5 s) for a file to exist.
sub wait_file {
	my ($file) = @_;
	for (1 .. 100) {
		return 1 if -e $file;
		select undef, undef, undef, 0.05;
	}
	return 0;
}

# Commands the proxy refused so far ("ms", "md"...).
sub broken {
	open my $fh, '<', "$BREAK.log" or return ();
	return map { chomp; $_ } <$fh>;
}

# A browser with a valid session at $base: the browser and its uid.
sub session_at {
	my ($base, $ua) = @_;
	my $b = browser(ua => $ua);
	$b->get($base);
	my $v = app_vars($b->get($base));
	return ($b, $v->{status} eq 'valid' ? $v->{uid} : '');
}

# The login of $b at $base while memcached fails: the application holds
# the request until the proxy is down ($what "down") or refuses the
# commands matching $what (a regex of command names). Returns the response
# and the error lines logged meanwhile; the proxy works again after.
sub failing_login {
	my ($b, $base, $what, $tag) = @_;
	unlink $BREAK;
	my $s = $b->start("${base}login?user=alice&wait=$tag");
	wait_file("$DIR/$tag.arrived");
	if ($what eq 'down') {
		my $n = () = broken();
		write_to("$BREAK.down", '');
		for (1 .. 100) {
			last if (() = broken()) > $n;
			select undef, undef, undef, 0.05;
		}
		# the worker has seen its idle connection close
		select undef, undef, undef, 0.2;
	} else {
		write_to($BREAK, $what);
	}
	my $from = log_size();
	write_to("$DIR/$tag.go", '');
	my $r = $s ? http_end($s) : undef;
	unlink $BREAK, "$BREAK.down";
	for (1 .. 100) {
		last if IO::Socket::INET->new('127.0.0.1:' . port(8082));
		select undef, undef, undef, 0.05;
	}
	my @errors = grep { /^\S+ \S+ \[error\]/ } split /\n/, log_since($from);
	return ($r, @errors);
}

###############################################################################

my @cases = (
	# name, location, failure ("down", or the commands refused), code
	[ 'deny, stopped', '/deny/', 'down', 503 ],
	[ 'allow, stopped', '/allow/', 'down', 200 ],
	[ 'deny, closing', '/deny/', '^m[gsd]$', 503 ],
	[ 'allow, closing', '/allow/', '^m[gsd]$', 200 ],
	[ 'deny, new record lost', '/deny/', '^ms$', 503 ],
	[ 'allow, old token delete lost', '/allow/', '^md$', 200 ],
);

my $n = 0;
for my $case (@cases) {
	my ($name, $base, $what, $code) = @$case;
	$n++;
	my ($b, $uid) = session_at($base, "Browser/$n");
	ok($uid, "$name: session valid before");
	my $token = $b->cookie('sessionid') // '';
	my @before = broken();

	my ($r, @errors) = failing_login($b, $base, $what, "case$n");
	my $v = app_vars($r);
	my @now = broken();
	cmp_ok(scalar @now, '>', scalar @before, "$name: memcached did fail");

	is($v->{code}, $code, "$name: $code");
	is(set_cookie_count($r, 'sessionid'), 0, "$name: no token cookie");
	is($v->{status}, 'error', "$name: status error");
	is($v->{user}, '', "$name: no user");
	unlike($r // '', qr/^X-Paranoid-Session:/mi, "$name: header not shown");
	if ($code == 200) {
		like($r // '', qr/\r\n\r\nuser=\[\] control=\[none\]\n\z/,
			"$name: the application's response");
	} else {
		unlike($r // '', qr/user=\[/, "$name: not the application's response");
	}
	is(scalar @errors, 1, "$name: one error line")
		or diag(join "\n", @errors);

	# memcached is back: the session the client had goes on, not logged in

	$b->absorb($r) if defined $r;
	is($b->cookie('sessionid'), $token, "$name: client kept its token");
	$v = app_vars($b->get($base));
	is($v->{status}, 'valid', "$name: session valid after");
	is($v->{seen_user}, '', "$name: no user after");
}

###############################################################################

# A TCP proxy from 127.0.0.1:$port to memcached on $to, which fails on
# demand, as memcached stopping would:
#
# - while the file "$break.down" exists, it is down: its connections are
#   closed and it does not listen (new connections are refused);
# - while the file $break exists, a command whose name matches the regex it
#   holds is not passed on: the proxy closes both connections instead.
#
# Each failure is logged as a line in "$break.log" (the command's name, or
# "down"). Everything else passes unchanged; data blocks of ms pass
# verbatim.
sub breaker {
	my ($port, $to, $break) = @_;
	my $listen = sub {
		IO::Socket::INET->new(
			Proto => 'tcp',
			LocalAddr => "127.0.0.1:$port",
			Listen => 16,
			ReuseAddr => 1,
		) or die "Can't create listening socket: $!\n";
	};
	my $server = $listen->();
	my %relays;

	local $SIG{PIPE} = 'IGNORE';

	while (1) {
		while ((my $gone = waitpid(-1, WNOHANG)) > 0) {
			delete $relays{$gone};
		}
		if (-e "$break.down") {
			if ($server) {
				close $server;
				undef $server;
				kill 'TERM', keys %relays;
				note_failure($break, 'down');
			}
			select undef, undef, undef, 0.02;
			next;
		}
		$server //= $listen->();
		next unless IO::Select->new($server)->can_read(0.02);
		my $client = $server->accept() or next;
		my $pid = fork();
		if (!defined $pid || $pid) {
			$relays{$pid} = 1 if $pid;
			close $client;
			next;
		}
		close $server;
		my $mc = IO::Socket::INET->new(Proto => 'tcp',
			PeerAddr => "127.0.0.1:$to") or exit 1;
		memcached_relay($client, $mc, sub {
			my ($cmd) = $_[0] =~ /^(\S+)/;
			return refused($cmd, $break) ? undef : $_[0];
		});
		exit 0;
	}
}


# Whether command $cmd is to be refused now; if so, it is logged.
sub refused {
	my ($cmd, $break) = @_;
	return 0 unless defined $cmd && open my $fh, '<', $break;
	my $re = <$fh> // '';
	close $fh;
	chomp $re;
	return 0 unless length $re && $cmd =~ /$re/;
	note_failure($break, $cmd);
	return 1;
}

sub note_failure {
	my ($break, $what) = @_;
	if (open my $log, '>>', "$break.log") {
		syswrite($log, "$what\n");
		close $log;
	}
}


###############################################################################
