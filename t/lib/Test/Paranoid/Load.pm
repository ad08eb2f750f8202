package Test::Paranoid::Load;

# A load generator for the paranoid_session tests: a forked child that keeps
# requesting a location with a set of existing sessions, each over its own
# HTTP/1.1 keep-alive connection (one per session and server), all of a
# round in flight at once, and counts what it sees.
#
#   my $load = Test::Paranoid::Load->start(
#       peers    => [ '127.0.0.1:' . port(8080) ],  # a session alternates
#       sessions => [ { cookies => { ... }, ua => '...', uid => '...' } ],
#       uri      => '/load',                        # or per session
#   );
#   $load->phase('down');       # later requests are counted as "down"
#   $load->wait_sent(50, 10);   # this phase sent 50, or 10 seconds passed
#   my $counts = $load->counts; # a snapshot, the child goes on
#   my $report = $load->stop;   # the last counts, the child reaped
#
# Each session follows its Set-Cookie headers (renewed nonces, cycled
# tokens, a new session) like a browser. A response is "ok" when it is a
# 200 whose X-Status is [valid] or [rotated] (a cycled token) with the X-Uid
# the session had ([new] gives the session a new uid but is not ok); a
# received response that is not ok
# is "bad" (by reason: "code:503", "status:new", "uid"...); a request that
# got no complete response is "failed" (connect, reset, eof, partial,
# timeout). sent = ok + bad + failed. With renew => 'cookie name' (e.g. the
# nonce cookie under paranoid_nonce_timeout 0), an ok response must also set
# that cookie: one that does not means the session presented a superseded
# nonce, so an earlier answer was lost ("stale").
#
# A reused keep-alive connection that the server closes before sending any
# byte of the response (an idle connection closed by a worker that shuts
# down, the classic keep-alive race) is retried once on a new connection, as
# HTTP clients do with idempotent requests; such retries are counted in
# "retried" and are not failures unless the retry fails.
#
# The counts (a hash): { phase => the current one, phases => { name => {
# sent, ok, bad, failed, retried, code => { 200 => n }, status => { valid =>
# n }, reason => { "code:503" => n, eof => n }, pid => { worker pid => n }
# } }, order => [ phase names ], samples => [ up to 100 failures, 100 bad
# responses and 25 retries: { phase, session, peer, what ("failed", "bad",
# "retried"), reason, pid: the worker (X-Pid) that last answered on that
# connection, reused, time, line, history: the session's last exchanges } ],
# sessions => [ { uid, first_uid, news, violations, requests, status,
# cookies, pids => { peer => worker that last answered } } ], elapsed,
# rounds }. Samples come with counts(1) and stop() only.

use warnings;
use strict;

use IO::Handle;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw/ WNOHANG _exit /;
use Socket qw/ IPPROTO_TCP TCP_NODELAY /;

use Test::Paranoid qw/ apply_set_cookies session_vars set_cookies /;
use Time::HiRes qw/ time /;

use Exporter qw/ import /;
our @EXPORT_OK = qw/ nginx_workers wait_until /;

my $SAMPLES = 100;
my $HISTORY = 6;    # exchanges of a session kept for the samples

sub start {
	my ($class, %opts) = @_;
	my %o = (uri => '/', io_timeout => 5, max_seconds => 60, pause => 0,
		%opts);
	die "no sessions\n" unless @{$o{sessions} || []};
	die "no peers\n" unless @{$o{peers} || []};

	pipe(my $ctl_r, my $ctl_w) or die "pipe: $!\n";
	pipe(my $res_r, my $res_w) or die "pipe: $!\n";
	my $pid = fork() // die "fork: $!\n";

	if ($pid == 0) {
		close $ctl_w;
		close $res_r;
		$res_w->autoflush(1);
		my $code = eval { _child(\%o, $ctl_r, $res_w); 0 } // do {
			print {$res_w} encode_json({ error => "$@" }) . "\n";
			1;
		};
		# no END blocks or destructors of the parent's objects here
		_exit($code);
	}

	close $ctl_r;
	close $res_w;
	$ctl_w->autoflush(1);
	return bless { pid => $pid, ctl => $ctl_w, res => $res_r,
		wait => $o{io_timeout} * 2 + 10 }, $class;
}

sub pid { return $_[0]{pid} }

# Sends one command, returns the child's answer (a hash), undef if none.
sub _ask {
	my ($self, $cmd) = @_;
	return undef unless $self->{pid};
	local $SIG{PIPE} = 'IGNORE';
	print {$self->{ctl}} "$cmd\n" or return undef;
	my $sel = IO::Select->new($self->{res});
	my ($line, $deadline) = ('', time + $self->{wait});
	while ($line !~ /\n/) {
		my $left = $deadline - time;
		return undef if $left <= 0 || !$sel->can_read($left);
		my $n = sysread($self->{res}, $line, 65536, length $line);
		return undef unless $n;
	}
	my $reply = eval { decode_json($line) };
	die "load generator: $reply->{error}" if $reply && $reply->{error};
	return $reply;
}

# Starts counting under a new name; returns once every request of the
# previous phase got its answer, so every later one counts as $name.
sub phase {
	my ($self, $name) = @_;
	die "bad phase name\n" unless $name =~ /^\w+$/;
	return $self->_ask("phase $name");
}

# A snapshot of the counts (without samples unless $full).
sub counts { return $_[0]->_ask($_[1] ? 'full' : 'counts') }

# Polls the counts until the current phase sent $n requests or $seconds
# passed; returns the last counts.
sub wait_sent {
	my ($self, $n, $seconds) = @_;
	my $deadline = time + $seconds;
	my $c;
	while (1) {
		$c = $self->counts or return undef;
		my $phase = $c->{phases}{$c->{phase}};
		return $c if $phase->{sent} >= $n || time >= $deadline;
		select undef, undef, undef, 0.05;
	}
}

# Stops the child: the answer to "stop" are the final counts.
sub stop {
	my ($self) = @_;
	return $self->{final} if exists $self->{final};
	my $pid = $self->{pid} or return undef;
	my $final = $self->_ask('stop');
	for (1 .. 100) {
		last if waitpid($pid, WNOHANG) != 0;
		select undef, undef, undef, 0.05;
	}
	if (kill 0, $pid) {
		kill 'KILL', $pid;
		waitpid($pid, 0);
	}
	close $self->{ctl};
	close $self->{res};
	$self->{pid} = undef;
	return $self->{final} = $final;
}

sub DESTROY {
	my ($self) = @_;
	local ($?, $@, $!);
	return unless $self->{pid};
	kill 'KILL', $self->{pid};
	waitpid($self->{pid}, 0);
}

# Sums a list of phases (names, or every phase without any) of $counts.
sub total {
	my ($counts, @names) = @_;
	@names = @{$counts->{order}} unless @names;
	my %sum = map { $_ => 0 } qw/ sent ok bad failed retried /;
	for my $p (grep { defined } map { $counts->{phases}{$_} } @names) {
		$sum{$_} += $p->{$_} for qw/ sent ok bad failed retried /;
		for my $h (qw/ code status reason pid /) {
			$sum{$h}{$_} += $p->{$h}{$_} for keys %{$p->{$h}};
		}
	}
	return \%sum;
}

# One line about some counts, for diagnostics.
sub summary {
	my ($c) = @_;
	my $list = sub {
		my ($h) = @_;
		return join(',', map { "$_=$h->{$_}" } sort keys %{$h || {}});
	};
	return sprintf 'sent %d ok %d bad %d failed %d retried %d; codes %s; '
		. 'statuses %s; reasons %s', (map { $c->{$_} // 0 }
			qw/ sent ok bad failed retried /),
		$list->($c->{code}), $list->($c->{status}), $list->($c->{reason});
}

# One sample as a line, for diagnostics.
sub sample_line {
	my ($s) = @_;
	return join ' ', map { "$_=" . ($s->{$_} // '') }
		grep { exists $s->{$_} } qw/ time phase what reason session peer
			reused pid line status violation uid expected error history /;
}

# nginx's worker processes: { pid => its title ("nginx: worker process",
# "... is shutting down") } for every child of the master named in
# nginx.pid of test object $t.
sub nginx_workers {
	my ($t) = @_;
	my $master = (eval { $t->read_file('nginx.pid') } // '') =~ /(\d+)/
		? $1 : return {};
	my %workers;
	for my $dir (glob '/proc/[0-9]*') {
		my ($pid) = $dir =~ m!(\d+)$!;
		open my $fh, '<', "$dir/stat" or next;
		my $stat = <$fh> // '';
		close $fh;
		# pid (comm) state ppid ...; comm may hold spaces and parentheses
		my ($state, $ppid) = $stat =~ /\)\s+(\S)\s+(\d+)/ or next;
		next unless $ppid == $master && $state ne 'Z';
		open $fh, '<', "$dir/cmdline" or next;
		my $title = join ' ', grep { length } split /\0/, (<$fh> // '');
		close $fh;
		$title =~ s/\s+\z//;
		$workers{$pid} = $title if $title =~ /worker process/;
	}
	return \%workers;
}

# Calls $check every 50 ms until it returns true or $seconds pass; returns
# its last result.
sub wait_until {
	my ($seconds, $check) = @_;
	my $deadline = time + $seconds;
	while (1) {
		my $res = $check->();
		return $res if $res || time >= $deadline;
		select undef, undef, undef, 0.05;
	}
}

###############################################################################

# The child.

sub _child {
	my ($o, $ctl, $res) = @_;
	$SIG{PIPE} = 'IGNORE';
	my $t0 = time;
	my %st = (phase => 'start', phases => {}, order => [], samples => [],
		rounds => 0, renew => $o->{renew});
	_new_phase(\%st, 'start');

	my @sess = map {
		my $s = $_;
		{ cookies => { %{$s->{cookies} || {}} }, ua => $s->{ua},
			uri => $s->{uri} // $o->{uri}, uid => $s->{uid},
			first_uid => $s->{uid}, news => 0, violations => 0,
			requests => 0,
			status => '', conns => {}, history => [], notable => [] }
	} @{$o->{sessions}};

	my $ctl_sel = IO::Select->new($ctl);
	my $ctl_buf = '';
	while (1) {
		# control commands, between rounds only
		while ($ctl_sel->can_read(0)) {
			my $n = sysread($ctl, $ctl_buf, 4096, length $ctl_buf);
			return _close_all(\@sess) unless $n;    # parent gone
			while ($ctl_buf =~ s/^([^\n]*)\n//) {
				my $cmd = $1;
				if ($cmd =~ /^phase (\w+)$/) {
					_new_phase(\%st, $1);
					_reply($res, { phase => $1 });
				} elsif ($cmd =~ /^(counts|full|stop)$/) {
					_reply($res, _report(\%st, \@sess, $t0, $cmd ne 'counts'));
					if ($cmd eq 'stop') {
						_close_all(\@sess);
						return;
					}
				}
			}
		}
		return _close_all(\@sess) if time - $t0 > $o->{max_seconds};

		_round($o, \%st, \@sess, $t0);
		$st{rounds}++;
		select undef, undef, undef, $o->{pause} if $o->{pause};
	}
}

sub _reply {
	my ($res, $data) = @_;
	print {$res} encode_json($data) . "\n";
}

sub _new_phase {
	my ($st, $name) = @_;
	$st->{phase} = $name;
	return if $st->{phases}{$name};
	push @{$st->{order}}, $name;
	$st->{phases}{$name} = { sent => 0, ok => 0, bad => 0, failed => 0,
		retried => 0, code => {}, status => {}, reason => {}, pid => {} };
}

sub _report {
	my ($st, $sess, $t0, $full) = @_;
	return { phase => $st->{phase}, phases => $st->{phases},
		order => $st->{order},
		samples => $full ? $st->{samples} : [], rounds => $st->{rounds},
		elapsed => sprintf('%.3f', time - $t0),
		sessions => [ map { my $s = $_; +{ cookies => $s->{cookies},
			pids => { map { $_ => $s->{conns}{$_}{pid} }
				keys %{$s->{conns}} },
			map { $_ => $s->{$_} } qw/ uid first_uid news violations
				requests status / } } @$sess ] };
}

sub _close_all {
	my ($sess) = @_;
	for my $s (@$sess) {
		close $_->{sock} for grep { $_->{sock} } values %{$s->{conns}};
		$s->{conns} = {};
	}
	return;
}

sub _sample {
	my ($st, %s) = @_;
	# retries are common (keep-alive races): fewer of them
	my $room = $s{what} eq 'retried' ? $SAMPLES / 4 : $SAMPLES;
	push @{$st->{samples}}, \%s if $st->{sampled}{$s{what}}++ < $room;
}

# Cookies in short: name=first 6 characters of the value.
sub _short_cookies {
	my ($c) = @_;
	return join ' ', map { "$_=" . substr($c->{$_}, 0, 6) } sort keys %$c;
}

sub _request_text {
	my ($s) = @_;
	my $req = "GET $s->{uri} HTTP/1.1\r\nHost: localhost\r\n";
	$req .= "User-Agent: $s->{ua}\r\n" if defined $s->{ua};
	my $c = $s->{cookies};
	$req .= 'Cookie: ' . join('; ', map { "$_=$c->{$_}" } sort keys %$c)
		. "\r\n" if %$c;
	return "$req\r\n";
}

# A connection of session $s to $peer: the kept one, or a new one (undef
# if it cannot be made).
sub _conn {
	my ($o, $s, $peer, $fresh) = @_;
	my $c = $s->{conns}{$peer} //= { sock => undef, pid => '' };
	if ($fresh && $c->{sock}) {
		close $c->{sock};
		$c->{sock} = undef;
	}
	if (!$c->{sock}) {
		$c->{sock} = IO::Socket::INET->new(Proto => 'tcp',
			PeerAddr => $peer, Timeout => $o->{io_timeout})
			or return undef;
		setsockopt($c->{sock}, IPPROTO_TCP, TCP_NODELAY, 1);
		$c->{used} = 0;
	}
	return $c;
}

# One request for every session, all in flight together.
sub _round {
	my ($o, $st, $sess, $t0) = @_;
	my $phase = $st->{phase};
	my $p = $st->{phases}{$phase};
	my @peers = @{$o->{peers}};
	my $peer = $peers[$st->{rounds} % @peers];
	my %flight;    # fileno => in-flight request

	my $finish = sub {
		my ($f, $what, $reason, %extra) = @_;
		my $c = $f->{conn};
		# the session's last exchanges, and its last notable ones (cookies
		# set, retries, failures), for the samples
		my $s = $sess->[$f->{index}];
		my $event = sprintf('%.3f %s %s pid=%s sent[%s] got[%s]',
			time - $t0, $what, $reason, $c->{pid} // '', $f->{sent} // '',
			$extra{got} // '');
		for my $h ($s->{history},
			$what ne 'ok' || ($extra{got} // '') =~ /=/ ? $s->{notable} : ())
		{
			push @$h, $event;
			shift @$h while @$h > $HISTORY;
		}
		$extra{history} = join(' ; ', @{$s->{notable}}) . ' ;; '
			. join(' ; ', @{$s->{history}}) unless $what eq 'ok';
		$p->{$what}++;
		$p->{reason}{$what eq 'retried' ? "retry:$reason" : $reason}++
			unless $what eq 'ok';
		_sample($st, phase => $phase, session => $f->{index},
			peer => $peer, what => $what, reason => $reason,
			pid => $c->{pid}, reused => $f->{reused},
			time => sprintf('%.3f', time - $t0), %extra)
			unless $what eq 'ok';
	};

	my $send;
	$send = sub {
		my ($i, $fresh) = @_;
		my $s = $sess->[$i];
		my $c = _conn($o, $s, $peer, $fresh);
		my %f = (index => $i, conn => $c, buf => '', retry => !$fresh,
			deadline => time + $o->{io_timeout});
		unless ($c) {
			$finish->(\%f, 'failed', 'connect', error => "$!");
			return;
		}
		$f{reused} = $c->{used}++ ? 1 : 0;
		my $req = _request_text($s);
		$f{sent} = _short_cookies($s->{cookies});
		my $n = syswrite($c->{sock}, $req);
		if (!defined $n || $n != length $req) {
			my $err = "$!";
			close $c->{sock};
			$c->{sock} = undef;
			if ($f{reused} && $f{retry}) {
				$finish->(\%f, 'retried', 'write', error => $err);
				return $send->($i, 1);
			}
			$finish->(\%f, 'failed', 'write', error => $err);
			return;
		}
		$flight{fileno $c->{sock}} = \%f;
	};

	for my $i (0 .. $#$sess) {
		$p->{sent}++;
		$sess->[$i]{requests}++;
		$send->($i, 0);
	}

	while (%flight) {
		my $sel = IO::Select->new(map { $_->{conn}{sock} } values %flight);
		my ($soonest) = sort { $a <=> $b } map { $_->{deadline} }
			values %flight;
		my @ready = $sel->can_read(_max(0, $soonest - time));
		my $now = time;

		for my $sock (@ready) {
			my $f = $flight{fileno $sock} or next;
			my $n = sysread($sock, $f->{buf}, 65536, length $f->{buf});
			my $err = defined $n ? '' : "$!";
			next if !defined $n && $!{EINTR};
			my $done = _complete($f->{buf}, !$n);
			next if $n && !$done;

			delete $flight{fileno $sock};
			my $c = $f->{conn};
			if (!$done) {
				close $sock;
				$c->{sock} = undef;
				my $reason = length $f->{buf} ? 'partial'
					: defined $n ? 'eof' : 'reset';
				if ($reason ne 'partial' && $f->{reused} && $f->{retry}) {
					$finish->($f, 'retried', $reason, error => $err);
					$send->($f->{index}, 1);
				} else {
					$finish->($f, 'failed', $reason, error => $err);
				}
				next;
			}
			_judge($st, $p, $sess->[$f->{index}], $f, $finish, $done);
		}

		for my $fd (keys %flight) {
			my $f = $flight{$fd};
			next if $f->{deadline} > $now;
			delete $flight{$fd};
			close $f->{conn}{sock};
			$f->{conn}{sock} = undef;
			$finish->($f, 'failed', 'timeout');
		}
	}
	undef $send;    # it refers to itself
}

sub _max { return $_[0] > $_[1] ? $_[0] : $_[1] }

# The parsed response once $buf holds a whole one ($eof: nothing more will
# come), else undef.
sub _complete {
	my ($buf, $eof) = @_;
	my $end = index($buf, "\r\n\r\n");
	return undef if $end < 0;
	my $head = substr($buf, 0, $end);
	my $body_at = $end + 4;
	my ($code) = $head =~ m!^HTTP/1\.\d (\d{3})!;
	return undef unless defined $code;
	if ($head =~ /^Content-Length:\s*(\d+)\s*$/mi) {
		return undef if length($buf) < $body_at + $1;
	} elsif ($head =~ /^Transfer-Encoding:\s*chunked/mi) {
		return undef if $buf !~ /\r\n0\r\n\r\n\z/;
	} elsif (!$eof) {
		return undef;
	}
	return { code => $code, head => $head,
		close => ($eof || $head =~ /^Connection:\s*close/mi
			|| $head =~ m!^HTTP/1\.0!) ? 1 : 0 };
}

sub _judge {
	my ($st, $p, $s, $f, $finish, $r) = @_;
	my $c = $f->{conn};
	my %h = %{session_vars($r->{head})};
	$h{pid} = ($r->{head} =~ /^X-Pid: \[([^\]\r\n]*)\]\r?$/mi)[0];
	if ($r->{close}) {
		close $c->{sock};
		$c->{sock} = undef;
	}
	$c->{pid} = $h{pid} if defined $h{pid};
	$p->{code}{$r->{code}}++;
	$p->{status}{$h{status} // ''}++;
	$p->{pid}{$h{pid}}++ if defined $h{pid};
	$s->{status} = $h{status} // '';

	apply_set_cookies($s->{cookies} //= {}, $r->{head});
	my %set = map { $_->{name} => $_->{value} }
		values %{set_cookies($r->{head})};
	my $got = "$r->{code} $h{status}" . ($h{violation} ? "/$h{violation}" : '')
		. (%set ? ' ' . _short_cookies(\%set) : '');

	my $line = ($r->{head} =~ /^([^\r\n]*)/)[0];
	my $status = $h{status} // '';
	my $uid = $h{uid} // '';
	my @extra = (got => $got, line => $line, status => $status, uid => $uid,
		violation => $h{violation} // '');
	if ($status eq 'new' || $status eq 'violation') {
		# a fresh session from here on (paranoid_on_violation clear)
		$s->{news}++ if $status eq 'new';
		$s->{violations}++ if $status eq 'violation';
		$s->{uid} = $uid if length $uid;
	}
	if ($r->{code} != 200) {
		$finish->($f, 'bad', "code:$r->{code}", @extra);
	} elsif ($status ne 'valid' && $status ne 'rotated') {
		$finish->($f, 'bad', "status:$status", @extra);
	} elsif (defined $s->{uid} && $uid ne $s->{uid}) {
		$finish->($f, 'bad', 'uid', @extra, expected => $s->{uid});
	} elsif (defined $st->{renew} && !exists $set{$st->{renew}}) {
		# the cookie is renewed on every request only when the one
		# presented is current: the session is behind, an answer lost
		$finish->($f, 'bad', 'stale', @extra);
	} else {
		$s->{uid} //= $uid;
		$finish->($f, 'ok', 'ok', got => $got);
	}
}


1;
