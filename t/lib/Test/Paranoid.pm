package Test::Paranoid;

# Helpers shared by the paranoid_session tests: memcached started on a free
# port and inspected through its text protocol, session cookies, and a small
# cookie-keeping client (Test::Paranoid::Browser, made with browser()).

use warnings;
use strict;

use Exporter qw/ import /;
use IO::Select;
use IO::Socket::IP;
use IO::Socket::UNIX;
use MIME::Base64 qw/ decode_base64url /;

use Test::Nginx;

our @EXPORT = qw/ memcached_start memcached_pid memcached_stats memcached_cmd
	session_cookie cookie_header get_with
	memcached_lookups memcached_keys memcached_value
	set_cookie_lines set_cookies set_cookie_count session_vars apply_set_cookies
	browser make_cert b64url_hex memcached_relay /;

# Starts memcached on port($port) of $host (127.0.0.1 unless given), or on a
# unix socket path, through the test object, so it stops with the test.
sub memcached_start {
	my ($t, $where, $host) = @_;
	$host //= '127.0.0.1';
	my @user = $> == 0 ? ('-u', 'root') : ();
	my @listen = $where =~ m!^/! ? ('-s', $where)
		: ('-l', $host, '-p', port($where));
	$t->run_daemon('memcached', @listen, '-U', '0', @user);
	if ($where =~ m!^/!) {
		for (1 .. 50) {
			last if -S $where;
			select undef, undef, undef, 0.1;
		}
	} elsif ($host eq '127.0.0.1') {
		$t->waitforsocket('127.0.0.1:' . port($where));
	} else {
		for (1 .. 50) {
			last if _connect($where, $host);
			select undef, undef, undef, 0.1;
		}
	}
}

# The pid of the memcached serving port($port), from /proc.
sub memcached_pid {
	my ($where) = @_;
	my $needle = $where =~ m!^/! ? $where : port($where);
	for my $dir (glob '/proc/[0-9]*') {
		open my $fh, '<', "$dir/cmdline" or next;
		my $cmd = join ' ', split /\0/, (<$fh> // '');
		close $fh;
		next unless $cmd =~ /^\S*memcached /;
		return ($dir =~ m!(\d+)$!)[0] if $cmd =~ /(-p|-s) \Q$needle\E\b/;
	}
	return undef;
}

sub _connect {
	my ($where, $host) = @_;
	return IO::Socket::UNIX->new(Peer => $where) if $where =~ m!^/!;
	return IO::Socket::IP->new(PeerHost => $host // '127.0.0.1',
		PeerPort => port($where));
}

# Sends one text protocol command; returns the reply up to its terminator.
sub memcached_cmd {
	my ($where, $cmd, $end, $host) = @_;
	$end //= qr/\r\n\z/;
	my $s = _connect($where, $host) or return undef;
	$s->autoflush(1);
	print $s $cmd;
	my $reply = '';
	local $SIG{ALRM} = sub { die "timeout\n" };
	alarm 5;
	eval {
		while ($reply !~ $end) {
			my $n = sysread($s, $reply, 65536, length $reply);
			last unless $n;
		}
	};
	alarm 0;
	close $s;
	return $reply;
}

# memcached's general statistics as a hash.
sub memcached_stats {
	my ($where, $host) = @_;
	my $reply = memcached_cmd($where, "stats\r\n", qr/END\r\n\z/, $host) // '';
	return { $reply =~ /^STAT (\S+) (\S+)\r$/mg };
}

# The value of the Set-Cookie header for cookie $name in a response.
sub session_cookie {
	my ($r, $name) = @_;
	$name //= 'sessionid';
	return ($r =~ /^Set-Cookie: \Q$name\E=([^;\r]*)/mi)[0];
}

sub cookie_header {
	my (%cookies) = @_;
	return 'Cookie: ' . join('; ', map { "$_=$cookies{$_}" } sort keys %cookies);
}

# GET $uri with extra header lines.
sub get_with {
	my ($uri, @headers) = @_;
	my $extra = join '', map { "$_\r\n" } @headers;
	return http("GET $uri HTTP/1.0\r\nHost: localhost\r\n$extra\r\n");
}

# Lookups served by memcached so far: a lookup is a meta get that also
# refreshes the TTL, which memcached counts as a touch, so both are summed.
sub memcached_lookups {
	my ($where, $host) = @_;
	my $s = memcached_stats($where, $host);
	return ($s->{cmd_get} // 0) + ($s->{cmd_touch} // 0);
}

# Every key memcached holds, from "lru_crawler metadump all" (keys there are
# URI-encoded). Retries a few times while the crawler is busy.
sub memcached_keys {
	my ($where, $host) = @_;
	for (1 .. 30) {
		my $reply = memcached_cmd($where, "lru_crawler metadump all\r\n",
			qr/(?:^|\n)(?:END|BUSY[^\r\n]*|ERROR[^\r\n]*)\r\n\z/, $host)
			// '';
		if ($reply =~ /(?:^|\n)END\r\n\z/) {
			# The crawler walks the LRU segments one after another while
			# memcached's maintainer moves items between them: an item
			# can be listed twice. A key names one item.
			my %seen;
			return grep { !$seen{$_}++ }
				map { s/%([0-9A-Fa-f]{2})/chr hex $1/ger }
				$reply =~ /^key=(\S+)/mg;
		}
		select undef, undef, undef, 0.1;
	}
	return ();
}

# The value stored under $key ("mg <key> v"), undef if there is none.
sub memcached_value {
	my ($where, $key, $host) = @_;
	my $s = _connect($where, $host) or return undef;
	$s->autoflush(1);
	print $s "mg $key v\r\n";
	my ($buf, $value) = ('');
	local $SIG{ALRM} = sub { die "timeout\n" };
	alarm 5;
	eval {
		while ($buf !~ /\r\n/) {
			sysread($s, $buf, 65536, length $buf) or last;
		}
		if ($buf =~ /^VA (\d+)[^\r\n]*\r\n/) {
			my ($len, $at) = ($1, $+[0]);
			while (length($buf) < $at + $len + 2) {
				sysread($s, $buf, 65536, length $buf) or last;
			}
			$value = substr($buf, $at, $len);
		}
	};
	alarm 0;
	close $s;
	return $value;
}

# The header part of a raw response.
sub _head {
	my ($r) = @_;
	return '' unless defined $r;
	return ($r =~ /^(.*?)\r?\n\r?\n/s)[0] // $r;
}

# Values of every Set-Cookie header of a response, in order (in scalar
# context: how many).
sub set_cookie_lines {
	my ($r) = @_;
	my @lines = _head($r) =~ /^Set-Cookie:[ \t]*([^\r\n]*?)[ \t]*\r?$/mgi;
	return @lines;
}

# How many Set-Cookie headers of a response set cookie $name.
sub set_cookie_count {
	my ($r, $name) = @_;
	return scalar grep { /^\Q$name\E=/ } set_cookie_lines($r);
}

# Parses one Set-Cookie value: { name, value, line, attrs => { lc name =>
# value ('' for flags) }, order => [ attribute names as written ], count =>
# { lc name => occurrences } }.
sub _parse_set_cookie {
	my ($line) = @_;
	my ($pair, @attrs) = split /;/, $line;
	my ($name, $value) = ($pair // '') =~ /^\s*([^=]*?)\s*=\s*(.*?)\s*$/;
	my %c = (name => $name // '', value => $value // '', line => $line,
		attrs => {}, order => [], count => {});
	for my $attr (@attrs) {
		my ($k, $v) = $attr =~ /^\s*([^=]*?)\s*(?:=\s*(.*?)\s*)?$/;
		next unless defined $k && length $k;
		push @{$c{order}}, $k;
		$c{count}{lc $k}++;
		$c{attrs}{lc $k} //= $v // '';
	}
	return \%c;
}

# Every cookie set by a response: { name => parsed (see above) }; a name
# set twice keeps its first header, and {count} tells how many there were.
sub set_cookies {
	my ($r) = @_;
	my %jar;
	for my $line (set_cookie_lines($r)) {
		my $c = _parse_set_cookie($line);
		if (my $seen = $jar{$c->{name}}) {
			$seen->{times}++;
			next;
		}
		$c->{times} = 1;
		$jar{$c->{name}} = $c;
	}
	return \%jar;
}

# The module's variables as the tests' add_header lines show them:
# X-Status, X-Uid and X-Violation, each "[value]"; undef when absent.
# {code} is the HTTP status code.
# Applies a response's Set-Cookie lines to a jar (name => value): a cookie
# with Max-Age <= 0 or an Expires in the past century is removed.
sub apply_set_cookies {
	my ($jar, $r) = @_;
	for my $line (set_cookie_lines($r)) {
		my $c = _parse_set_cookie($line);
		my $max_age = $c->{attrs}{'max-age'};
		my $gone = (defined $max_age && $max_age =~ /^-?\d+$/
				&& $max_age <= 0)
			|| ($c->{attrs}{expires} // '') =~ /\b19(?:70|[0-6]\d)\b/;
		if ($gone) {
			delete $jar->{$c->{name}};
		} else {
			$jar->{$c->{name}} = $c->{value};
		}
	}
	return $jar;
}

sub session_vars {
	my ($r) = @_;
	my $head = _head($r);
	my ($code) = $head =~ m!^HTTP/\d\.\d (\d{3})!;
	my %v = (code => $code);
	for (qw/ Status Uid Violation /) {
		$v{lc $_} = ($head =~ /^X-$_: \[([^\]\r\n]*)\]\r?$/mi)[0];
	}
	return \%v;
}

# Relays one client connection to memcached ($mc) until either side
# closes, for tests that stand a proxy between nginx and memcached. Every
# meta command line goes through $filter, which returns the line to send
# on (changed or not), or undef to cut both connections at that command
# (what came before it is sent first); the data block of an `ms` passes as
# it is, and replies pass untouched. nginx pipelines, so the relay only
# rewrites the stream and never answers by itself.
sub memcached_relay {
	my ($client, $mc, $filter) = @_;
	my $sel = IO::Select->new($client, $mc);
	my ($in, $data_left) = ('', 0);

	while (1) {
		for my $s ($sel->can_read()) {
			my $buf;
			my $n = sysread($s, $buf, 65536);
			return unless $n;
			if ($s == $mc) {
				_write_all($client, $buf) or return;
				next;
			}
			$in .= $buf;
			my $out = '';
			while (length $in) {
				if ($data_left) {
					my $part = substr($in, 0, $data_left, '');
					$data_left -= length $part;
					$out .= $part;
					next;
				}
				my $eol = index($in, "\n");
				last if $eol < 0;
				my $line = $filter->(substr($in, 0, $eol + 1, ''));
				if (!defined $line) {
					_write_all($mc, $out) if length $out;
					return;
				}
				$data_left = $1 + 2 if $line =~ /^ms \S+ (\d+)/;
				$out .= $line;
			}
			_write_all($mc, $out) or return if length $out;
		}
	}
}

sub _write_all {
	my ($s, $buf) = @_;
	while (length $buf) {
		my $n = syswrite($s, $buf) or return 0;
		substr($buf, 0, $n, '');
	}
	return 1;
}

# The hex of a base64url value (tokens, nonces, keys), for log and store
# checks; undef if it does not decode.
sub b64url_hex {
	my ($text) = @_;
	return undef unless defined $text && $text =~ /^[A-Za-z0-9_-]+$/;
	return unpack 'H*', decode_base64url($text);
}

# A throwaway self-signed certificate $name.crt / $name.key in the test
# directory.
sub make_cert {
	my ($t, $name) = @_;
	$name //= 'localhost';
	my $d = $t->testdir();
	system("openssl req -x509 -new -newkey rsa:2048 -nodes -subj /CN=$name "
		. "-days 1 -keyout '$d/$name.key' -out '$d/$name.crt' "
		. ">>'$d/openssl.out' 2>&1") == 0
		or die "Can't create certificate for $name: $!\n";
	return $t;
}

sub browser { return Test::Paranoid::Browser->new(@_) }

###############################################################################

package Test::Paranoid::Browser;

# A client that keeps the cookies it is given and sends them back, like a
# browser: every Set-Cookie updates the jar, one with Max-Age=0 (or an
# Expires in the past) removes its cookie. Options (new, clone, and each
# request, where they apply to that request only):
#
#   ua => 'User-Agent' (undef: no header)   ip => X-Real-IP value
#   ssl => 1 (HTTPS to port 8443)           headers => [ 'Name: value', ... ]
#
# Request-only options: cookies => { ... } sends exactly these, drop => [
# names ] leaves some out, add => { ... } adds or replaces some, keep => 0
# does not update the jar from the response.

use Test::Nginx qw/ :DEFAULT http_start http_end /;

sub new {
	my ($class, %opts) = @_;
	return bless { ua => 'ParanoidBrowser/1.0', ip => undef, ssl => 0,
		headers => [], jar => {}, %opts }, $class;
}

# A copy with the same cookies (a thief, or another tab), other settings
# changed by %opts.
sub clone {
	my ($self, %opts) = @_;
	return bless { %$self, jar => { %{$self->{jar}} }, last => undef,
		%opts }, ref $self;
}

sub cookie { return $_[0]{jar}{$_[1]} }
sub cookies { return { %{$_[0]{jar}} } }
sub set { my ($self, %c) = @_; @{$self->{jar}}{keys %c} = values %c; $self }
sub forget { my ($self, @n) = @_; delete @{$self->{jar}}{@n}; $self }
sub last_response { return $_[0]{last} }

# The raw request for $uri.
sub request_text {
	my ($self, $uri, %opts) = @_;
	my %o = (%$self, %opts);
	my %send = $opts{cookies} ? %{$opts{cookies}} : %{$self->{jar}};
	delete @send{@{$opts{drop} || []}};
	%send = (%send, %{$opts{add} || {}});

	my $req = "GET $uri HTTP/1.0\r\nHost: localhost\r\n";
	$req .= "User-Agent: $o{ua}\r\n" if defined $o{ua};
	$req .= "X-Real-IP: $o{ip}\r\n" if defined $o{ip};
	$req .= "$_\r\n" for @{$o{headers} || []};
	$req .= 'Cookie: ' . join('; ', map { "$_=$send{$_}" } sort keys %send)
		. "\r\n" if %send;
	return "$req\r\n";
}

sub _io {
	my ($self, %opts) = @_;
	my $ssl = exists $opts{ssl} ? $opts{ssl} : $self->{ssl};
	return $ssl ? (SSL => 1, PeerAddr => '127.0.0.1:' . port(8443)) : ();
}

# GET $uri; returns the raw response and keeps its cookies.
sub get {
	my ($self, $uri, %opts) = @_;
	my $r = http($self->request_text($uri, %opts), $self->_io(%opts));
	$self->{last} = $r;
	$self->absorb($r) unless defined $opts{keep} && !$opts{keep};
	return $r;
}

# Sends the request and returns the socket, for http_end: overlapping
# requests. The jar is not updated.
sub start {
	my ($self, $uri, %opts) = @_;
	return http($self->request_text($uri, %opts), $self->_io(%opts),
		start => 1);
}

# Updates the jar from a response's Set-Cookie headers.
sub absorb {
	my ($self, $r) = @_;
	Test::Paranoid::apply_set_cookies($self->{jar}, $r);
	return $self;
}

1;
