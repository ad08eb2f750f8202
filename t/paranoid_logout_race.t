#!/usr/bin/perl

# Tests for paranoid_session module: a logout ends the session whatever
# raced it. A request that cycles the token (paranoid_key_timeout) and a
# logout (paranoid_session_destroy) with the same cookies are sent at the
# same time on two connections (nginx runs two workers), many times
# over. Afterwards neither the old token nor the one the cycling response
# handed out may lead to the session, and memcached may hold no record with
# its uid.

###############################################################################

use warnings;
use strict;

use Test::More;

use IO::Select;
use IO::Socket::INET;

BEGIN { use FindBin; chdir($FindBin::Bin); }

# t/lib's Test::Nginx, unless PERL5LIB points at an nginx-tests checkout.
BEGIN { push @INC, 'lib'; }
use Test::Nginx;
use Test::Paranoid;

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

    # the old token and nonce stay acceptable long after the race
    paranoid_nonce_window_timeout 5s;

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        add_header X-Status "[$paranoid_session_status]" always;
        add_header X-Uid "[$paranoid_session_uid]" always;
        add_header X-Violation "[$paranoid_session_violation]" always;

        # every request after the first second cycles the token
        location / {
            paranoid_session on;
            paranoid_key_timeout 1s;
        }

        location /logout {
            paranoid_session on;
            paranoid_session_destroy on;
        }
    }
}

EOF

$t->write_file('index.html', 'hello');
$t->write_file('logout', 'logout');

memcached_start($t, 11211);
$t->run();

$t->plan(6);

###############################################################################

# Races: $BATCHES batches of $BATCH sessions, each batch aged past the key
# timeout before its sessions race.
my ($BATCHES, $BATCH) = (5, 60);

# Sends both requests on connections opened beforehand, one right after
# the other, then reads both responses: ($first, $second).
sub together {
	my (@requests) = @_;
	my @socks = map {
		IO::Socket::INET->new(Proto => 'tcp',
			PeerAddr => '127.0.0.1:' . port(8080))
			or die "Can't connect to nginx: $!\n";
	} @requests;
	syswrite($socks[$_], $requests[$_]) for 0 .. $#socks;

	my @replies = ('') x @socks;
	my $sel = IO::Select->new(@socks);
	my %at = map { fileno($socks[$_]) => $_ } 0 .. $#socks;
	local $SIG{ALRM} = sub { die "timeout\n" };
	alarm 8;
	eval {
		while ($sel->count()) {
			for my $s ($sel->can_read()) {
				my $n = sysread($s, $replies[$at{fileno $s}], 65536,
					length $replies[$at{fileno $s}]);
				next if $n;
				$sel->remove($s);
				close $s;
			}
		}
	};
	alarm 0;
	return @replies;
}

# What a request with exactly these cookies gets at /.
sub check {
	my (%cookies) = @_;
	return session_vars(browser()->get('/', cookies => \%cookies, keep => 0));
}

my (%raced, @old_alive, @new_alive, @cycled);
my ($races, $logouts_ok) = (0, 0);

for my $batch (1 .. $BATCHES) {
	my @sessions;
	for (1 .. $BATCH) {
		my $b = browser();
		my $v = session_vars($b->get('/'));
		push @sessions, [ $b, $v->{uid} // '' ];
	}

	# the keys must be older than paranoid_key_timeout to cycle
	select undef, undef, undef, 1.2;

	for my $i (0 .. $#sessions) {
		my ($b, $uid) = @{$sessions[$i]};
		my %old = %{$b->cookies()};
		$raced{$uid} = 1;
		$races++;

		# alternate which request leaves first
		my @req = ($b->request_text('/'), $b->request_text('/logout'));
		@req = reverse @req if $i % 2;
		my @res = together(@req);
		@res = reverse @res if $i % 2;
		my ($page, $logout) = @res;

		$logouts_ok++ if (session_vars($logout)->{status} // '')
			=~ /^(destroyed|new)\z/;
		my $pv = session_vars($page);
		push @cycled, $uid if ($pv->{uid} // '') eq $uid
			&& ($pv->{status} // '') eq 'rotated';

		# the old token: the session is over
		my $v = check(%old);
		push @old_alive, "$uid: old token $v->{status}"
			if ($v->{uid} // '') eq $uid
			|| ($v->{status} // '') =~ /^(valid|rotated)\z/;

		# the token the page handed out, if any: not the session either
		my %new = %{apply_set_cookies({ %old }, $page // '')};
		next if ($new{sessionid} // '') eq ($old{sessionid} // '');
		$v = check(%new);
		push @new_alive, "$uid: new token $v->{status}"
			if ($v->{uid} // '') eq $uid;
	}
}

# every record memcached still holds, by kind; session uids at bytes 3..18

my @survivors;
for my $key (memcached_keys(11211)) {
	my $value = memcached_value(11211, $key) // next;
	my ($version, $kind) = unpack('C C', $value);
	next unless ($version // 0) == 1 && ($kind // 0) == 1;
	my $uid = unpack('H*', substr($value, 3, 16));
	push @survivors, $uid if $raced{$uid};
}

# how often the cycle answered before the logout (a diagnostic: which
# request wins is up to the scheduler)
note("$races races, " . scalar(@cycled) . " cycled before the logout");

is($races, $BATCHES * $BATCH, 'every race run');
is($logouts_ok, $races, 'every logout answered destroyed (or new)');
is(scalar @old_alive, 0, 'old token never leads to the session')
	or diag(join "\n", @old_alive[0 .. ($#old_alive > 9 ? 9 : $#old_alive)]);
is(scalar @new_alive, 0, 'cycled token never leads to the session')
	or diag(join "\n", @new_alive[0 .. ($#new_alive > 9 ? 9 : $#new_alive)]);

is(scalar @survivors, 0, 'no record of a logged-out session in memcached')
	or diag(join "\n", @survivors[0 .. ($#survivors > 9 ? 9 : $#survivors)]);

ok(!grep({ !/^[0-9a-f]{32}\z/ } keys %raced), 'every raced session had a uid');

###############################################################################
