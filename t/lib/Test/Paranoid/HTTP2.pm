package Test::Paranoid::HTTP2;

# A minimal HTTP/2 client for the paranoid_session tests, cleartext with
# prior knowledge (RFC 9113 section 3.3): the connection preface and
# SETTINGS, requests as HEADERS frames whose fields are HPACK literals
# without indexing and without Huffman coding, and responses read frame by
# frame: SETTINGS and PING are acknowledged, DATA is collected per stream
# and credited back with WINDOW_UPDATE, and response header blocks are
# decoded with a full HPACK decoder (RFC 7541: static and dynamic table,
# Huffman-coded strings).
#
#   my $h2 = Test::Paranoid::HTTP2->new(port(8081));
#   my @ids = $h2->send_requests(map { { path => '/x', headers => [
#       cookie => 'a=b', cookie => 'c=d' ] } } 1 .. 50);
#   $h2->wait_for(@ids);
#   my $res = $h2->response($ids[0]);  # { status, headers, body, reset }
#
# Only what the tests need: no server push, no priorities, no request
# bodies; every request ends its stream with its HEADERS.

use warnings;
use strict;

use IO::Select;
use IO::Socket::INET;

use constant {
	DATA => 0, HEADERS => 1, RST_STREAM => 3, SETTINGS => 4,
	PUSH_PROMISE => 5, PING => 6, GOAWAY => 7, WINDOW_UPDATE => 8,
	CONTINUATION => 9,
	END_STREAM => 0x1, ACK => 0x1, END_HEADERS => 0x4, PADDED => 0x8,
	PRIORITY_FLAG => 0x20,
};

my $PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
my $FRAME_MAX = 16384;          # SETTINGS_MAX_FRAME_SIZE's initial value
my $WINDOW = 1 << 24;           # what we let the server send before credit

# new($port, host => '127.0.0.1', timeout => seconds): connects, sends the
# preface and our SETTINGS, and waits for the server's SETTINGS.
sub new {
	my ($class, $port, %opts) = @_;
	my $sock = IO::Socket::INET->new(
		PeerAddr => ($opts{host} // '127.0.0.1') . ":$port",
		Proto => 'tcp') or die "Can't connect to $port: $!\n";
	$sock->autoflush(1);
	my $self = bless {
		sock => $sock, buf => '', next_id => 1, streams => {},
		server_settings => undef, timeout => $opts{timeout} // 8,
		table => [], table_size => 0, table_max => 4096, goaway => undef,
		block => undef,
	}, $class;

	# SETTINGS_ENABLE_PUSH 0, SETTINGS_INITIAL_WINDOW_SIZE, plus more credit
	# for the connection, so that the server is never held back by us.
	$self->_write($PREFACE
		. _frame(SETTINGS, 0, 0, pack('nN nN', 2, 0, 4, $WINDOW))
		. _frame(WINDOW_UPDATE, 0, 0, pack('N', $WINDOW - 65535)));
	$self->_read_frames(sub { defined $self->{server_settings} })
		or die "no SETTINGS from the server\n";
	return $self;
}

# The server's SETTINGS: { id => value } (3: MAX_CONCURRENT_STREAMS).
sub server_settings { return $_[0]{server_settings} }

# The GOAWAY the server sent, if any: { last_stream, error }.
sub goaway { return $_[0]{goaway} }

# Sends every request in one write, before reading anything; returns their
# stream ids. A request: { path, method (GET), authority (localhost),
# headers => [ name => value, ... ] (names in lower case) }.
sub send_requests {
	my ($self, @requests) = @_;
	my ($out, @ids) = ('');
	for my $req (@requests) {
		my $id = $self->{next_id};
		$self->{next_id} += 2;
		$self->{streams}{$id} = { headers => [], body => '', done => 0 };
		my @fields = (':method' => $req->{method} // 'GET',
			':scheme' => 'http', ':path' => $req->{path},
			':authority' => $req->{authority} // 'localhost',
			@{$req->{headers} || []});
		my $block = '';
		while (my ($name, $value) = splice @fields, 0, 2) {
			$block .= "\x00" . _string($name) . _string($value);
		}
		$out .= _header_frames($id, $block);
		push @ids, $id;
	}
	$self->_write($out);
	return @ids;
}

# One request; returns its stream id.
sub request {
	my ($self, $path, %opts) = @_;
	return ($self->send_requests({ path => $path, %opts }))[0];
}

# Reads until every stream in @ids ended (END_STREAM, RST_STREAM, or the
# connection closed); true if they all did in time.
sub wait_for {
	my ($self, @ids) = @_;
	return $self->_read_frames(sub {
		!grep { !$self->{streams}{$_}{done} } @ids;
	});
}

# A stream's response: { status (from :status), headers => [ [ name,
# value ], ... ], body, reset (RST_STREAM error code, if reset), done }.
sub response {
	my ($self, $id) = @_;
	my $s = $self->{streams}{$id} or return undef;
	my ($status) = map { $_->[1] } grep { $_->[0] eq ':status' }
		@{$s->{headers}};
	return { %$s, status => $status };
}

# Every value of header $name in a response (names compare in lower case).
sub header_values {
	my ($res, $name) = @_;
	$name = lc $name;
	return map { $_->[1] } grep { $_->[0] eq $name } @{$res->{headers}};
}

sub close {
	my ($self) = @_;
	$self->{sock}->close() if $self->{sock};
	$self->{sock} = undef;
}

###############################################################################

# A frame: 24-bit length, type, flags, 31-bit stream id, payload.
sub _frame {
	my ($type, $flags, $id, $payload) = @_;
	my $len = length $payload;
	return pack('nC C C N', $len >> 8, $len & 0xff, $type, $flags,
		$id & 0x7fffffff) . $payload;
}

# A header block as HEADERS plus CONTINUATION frames as needed.
sub _header_frames {
	my ($id, $block) = @_;
	my @parts = $block =~ /(.{1,$FRAME_MAX})/gs;
	@parts = ('') unless @parts;
	my $out = '';
	for my $i (0 .. $#parts) {
		my $flags = $i == $#parts ? END_HEADERS : 0;
		$out .= $i == 0
			? _frame(HEADERS, $flags | END_STREAM, $id, $parts[$i])
			: _frame(CONTINUATION, $flags, $id, $parts[$i]);
	}
	return $out;
}

# HPACK integer with an N-bit prefix; the high bits of the first octet are
# given in $first.
sub _integer {
	my ($value, $bits, $first) = @_;
	my $max = (1 << $bits) - 1;
	return pack('C', ($first // 0) | $value) if $value < $max;
	my $out = pack('C', ($first // 0) | $max);
	$value -= $max;
	while ($value >= 128) {
		$out .= pack('C', ($value & 0x7f) | 0x80);
		$value >>= 7;
	}
	return $out . pack('C', $value);
}

# An HPACK string literal, not Huffman-coded.
sub _string {
	my ($s) = @_;
	return _integer(length $s, 7) . $s;
}

sub _write {
	my ($self, $data) = @_;
	local $SIG{PIPE} = 'IGNORE';
	while (length $data) {
		my $n = syswrite($self->{sock}, $data);
		die "write: $!\n" unless defined $n;
		substr($data, 0, $n, '');
	}
}

# Reads and handles frames until $done->() is true (returns 1), the
# connection closes, or the timeout passes (returns 0).
sub _read_frames {
	my ($self, $done) = @_;
	my $deadline = time + $self->{timeout};
	my $select = IO::Select->new($self->{sock});
	while (1) {
		while (defined(my $frame = $self->_next_frame())) {
			$self->_handle(@$frame);
		}
		return 1 if $done->();
		return 0 if !$self->{sock} || $self->{closed};
		my $left = $deadline - time;
		return 0 if $left <= 0;
		$select->can_read($left) or next;
		my $n = sysread($self->{sock}, $self->{buf}, 65536,
			length $self->{buf});
		unless ($n) {
			$self->{closed} = 1;
			$_->{done} = 1 for values %{$self->{streams}};
		}
	}
}

# The next complete frame in the buffer: [ type, flags, id, payload ].
sub _next_frame {
	my ($self) = @_;
	return undef if length $self->{buf} < 9;
	my ($hi, $lo, $type, $flags, $id) = unpack('nC C C N', $self->{buf});
	my $len = ($hi << 8) | $lo;
	return undef if length $self->{buf} < 9 + $len;
	my $payload = substr($self->{buf}, 9, $len);
	substr($self->{buf}, 0, 9 + $len, '');
	return [ $type, $flags, $id & 0x7fffffff, $payload ];
}

sub _handle {
	my ($self, $type, $flags, $id, $payload) = @_;
	my $stream = $self->{streams}{$id};

	if ($type == SETTINGS) {
		return if $flags & ACK;
		my %s = unpack('(nN)*', $payload);
		$self->{server_settings} = { %{$self->{server_settings} || {}}, %s };
		$self->_write(_frame(SETTINGS, ACK, 0, ''));

	} elsif ($type == PING) {
		$self->_write(_frame(PING, ACK, 0, $payload)) unless $flags & ACK;

	} elsif ($type == GOAWAY) {
		my ($last, $error) = unpack('NN', $payload);
		$self->{goaway} = { last_stream => $last & 0x7fffffff,
			error => $error };
		$_->{done} = 1 for grep { !$_->{done} } values %{$self->{streams}};

	} elsif ($type == RST_STREAM) {
		return unless $stream;
		$stream->{reset} = unpack('N', $payload);
		$stream->{done} = 1;

	} elsif ($type == HEADERS || $type == CONTINUATION) {
		if ($type == HEADERS) {
			$payload = _unpad($payload, $flags);
			substr($payload, 0, 5, '') if $flags & PRIORITY_FLAG;
			$self->{block} = { id => $id, data => '',
				end_stream => $flags & END_STREAM };
		}
		$self->{block}{data} .= $payload;
		return unless $flags & END_HEADERS;
		my $block = delete $self->{block};
		my $s = $self->{streams}{$block->{id}} or return;
		push @{$s->{headers}}, $self->_decode_block($block->{data});
		$s->{done} = 1 if $block->{end_stream};

	} elsif ($type == DATA) {
		my $len = length $payload;
		$payload = _unpad($payload, $flags);
		if ($stream) {
			$stream->{body} .= $payload;
			$stream->{done} = 1 if $flags & END_STREAM;
		}
		# credit back what was consumed, connection and stream
		if ($len) {
			my $credit = pack('N', $len);
			$self->_write(_frame(WINDOW_UPDATE, 0, 0, $credit)
				. ($stream && !$stream->{done}
					? _frame(WINDOW_UPDATE, 0, $id, $credit) : ''));
		}
	}
	# WINDOW_UPDATE, PUSH_PROMISE (push is disabled) and unknown types:
	# nothing to do.
}

sub _unpad {
	my ($payload, $flags) = @_;
	return $payload unless $flags & PADDED;
	my $pad = unpack('C', $payload);
	return substr($payload, 1, length($payload) - 1 - $pad);
}

###############################################################################

# HPACK decoding (RFC 7541).

# Appendix A: the static table, index 1 to 61.
my @STATIC = map { [ split / /, $_, 2 ] } (
	':authority', ':method GET', ':method POST', ':path /',
	':path /index.html', ':scheme http', ':scheme https', ':status 200',
	':status 204', ':status 206', ':status 304', ':status 400',
	':status 404', ':status 500', 'accept-charset',
	'accept-encoding gzip, deflate', 'accept-language', 'accept-ranges',
	'accept', 'access-control-allow-origin', 'age', 'allow',
	'authorization', 'cache-control', 'content-disposition',
	'content-encoding', 'content-language', 'content-length',
	'content-location', 'content-range', 'content-type', 'cookie', 'date',
	'etag', 'expect', 'expires', 'from', 'host', 'if-match',
	'if-modified-since', 'if-none-match', 'if-range',
	'if-unmodified-since', 'last-modified', 'link', 'location',
	'max-forwards', 'proxy-authenticate', 'proxy-authorization', 'range',
	'referer', 'refresh', 'retry-after', 'server', 'set-cookie',
	'strict-transport-security', 'transfer-encoding', 'user-agent', 'vary',
	'via', 'www-authenticate',
);
$_->[1] //= '' for @STATIC;

# Decodes one header block; returns [ name, value ] pairs.
sub _decode_block {
	my ($self, $data) = @_;
	my ($pos, @fields) = (0);
	while ($pos < length $data) {
		my $byte = ord substr($data, $pos, 1);
		if ($byte & 0x80) {                         # indexed field
			my $index = _read_int($data, \$pos, 7);
			push @fields, [ @{$self->_entry($index)} ];
		} elsif ($byte & 0x40) {                    # literal, indexed
			my $field = $self->_literal($data, \$pos, 6);
			$self->_insert(@$field);
			push @fields, $field;
		} elsif ($byte & 0x20) {                    # table size update
			$self->{table_max} = _read_int($data, \$pos, 5);
			$self->_evict(0);
		} else {                                    # never / not indexed
			push @fields, $self->_literal($data, \$pos, 4);
		}
	}
	return @fields;
}

sub _literal {
	my ($self, $data, $pos, $bits) = @_;
	my $index = _read_int($data, $pos, $bits);
	my $name = $index ? $self->_entry($index)->[0] : _read_string($data, $pos);
	return [ $name, _read_string($data, $pos) ];
}

sub _entry {
	my ($self, $index) = @_;
	return $STATIC[$index - 1] if $index >= 1 && $index <= @STATIC;
	my $entry = $self->{table}[$index - @STATIC - 1];
	die "HPACK: no table entry $index\n" unless $entry;
	return $entry;
}

# Section 4.4: new entries go first; the oldest leave when it is full.
sub _insert {
	my ($self, $name, $value) = @_;
	my $size = length($name) + length($value) + 32;
	$self->_evict($size);
	return if $size > $self->{table_max};
	unshift @{$self->{table}}, [ $name, $value ];
	$self->{table_size} += $size;
}

sub _evict {
	my ($self, $room) = @_;
	while (@{$self->{table}}
		&& $self->{table_size} + $room > $self->{table_max})
	{
		my $old = pop @{$self->{table}};
		$self->{table_size} -= length($old->[0]) + length($old->[1]) + 32;
	}
}

sub _read_int {
	my ($data, $pos, $bits) = @_;
	my $max = (1 << $bits) - 1;
	my $value = ord(substr($data, $$pos++, 1)) & $max;
	return $value if $value < $max;
	my $shift = 0;
	while (1) {
		die "HPACK: truncated integer\n" if $$pos >= length $data;
		my $b = ord substr($data, $$pos++, 1);
		$value += ($b & 0x7f) << $shift;
		$shift += 7;
		last unless $b & 0x80;
	}
	return $value;
}

sub _read_string {
	my ($data, $pos) = @_;
	my $huffman = ord(substr($data, $$pos, 1)) & 0x80;
	my $len = _read_int($data, $pos, 7);
	die "HPACK: truncated string\n" if $$pos + $len > length $data;
	my $s = substr($data, $$pos, $len);
	$$pos += $len;
	return $huffman ? _huffman_decode($s) : $s;
}

# Appendix B's Huffman code is canonical: codes of one length are
# consecutive in symbol order, and each length follows on from the shorter
# ones. So the code is fully given by each symbol's length, listed here
# (256 is EOS); the codes are rebuilt from it and the result is checked
# to fill the whole code space.
my %LENGTHS = (
	5 => [ map(ord, qw/0 1 2 a c e i o s t/) ],
	6 => [ 32, map(ord, qw/% - . \/ 3 4 5 6 7 8 9 = A _ b d f g h l m n p r u/) ],
	7 => [ map(ord, ':', 'B' .. 'W', 'Y', qw/j k q v w x y z/) ],
	8 => [ map(ord, '&', '*', ',', ';', 'X', 'Z') ],
	10 => [ map(ord, '!', '"', '(', ')', '?') ],
	11 => [ map(ord, "'", '+', '|') ],
	12 => [ map(ord, '#', '>') ],
	13 => [ 0, map(ord, '$', '@', '[', ']', '~') ],
	14 => [ map(ord, '^', '}') ],
	15 => [ map(ord, '<', '`', '{') ],
	19 => [ 92, 195, 208 ],
	20 => [ 128, 130, 131, 162, 184, 194, 224, 226 ],
	21 => [ 153, 161, 167, 172, 176, 177, 179, 209, 216, 217, 227, 229,
		230 ],
	22 => [ 129, 132, 133, 134, 136, 146, 154, 156, 160, 163, 164, 169,
		170, 173, 178, 181, 185, 186, 187, 189, 190, 196, 198, 228, 232,
		233 ],
	23 => [ 1, 135, 137, 138, 139, 140, 141, 143, 147, 149, 150, 151, 152,
		155, 157, 158, 165, 166, 168, 174, 175, 180, 182, 183, 188, 191,
		197, 231, 239 ],
	24 => [ 9, 142, 144, 145, 148, 159, 171, 206, 215, 225, 236, 237 ],
	25 => [ 199, 207, 234, 235 ],
	26 => [ 192, 193, 200, 201, 202, 205, 210, 213, 218, 219, 238, 240,
		242, 243, 255 ],
	27 => [ 203, 204, 211, 212, 214, 221, 222, 223, 241, 244, 245, 246,
		247, 248, 250, 251, 252, 253, 254 ],
	28 => [ 2 .. 8, 11, 12, 14 .. 21, 23 .. 31, 127, 220, 249 ],
	30 => [ 10, 13, 22, 256 ],
);

# "length:code" => symbol.
my %HUFFMAN = do {
	my ($code, $prev, %seen, %map) = (0, 0);
	for my $len (sort { $a <=> $b } keys %LENGTHS) {
		$code <<= $len - $prev;
		$prev = $len;
		for my $sym (sort { $a <=> $b } @{$LENGTHS{$len}}) {
			die "HPACK: symbol $sym listed twice\n" if $seen{$sym}++;
			$map{"$len:$code"} = $sym;
			$code++;
		}
	}
	# every symbol once, and the last code (EOS) is all ones
	die "HPACK: bad Huffman table\n"
		unless keys %seen == 257 && $code == 1 << $prev;
	%map;
};

sub _huffman_decode {
	my ($bytes) = @_;
	my ($out, $code, $len) = ('', 0, 0);
	for my $bit (split //, unpack('B*', $bytes)) {
		$code = ($code << 1) | $bit;
		$len++;
		my $sym = $HUFFMAN{"$len:$code"};
		next unless defined $sym;
		die "HPACK: EOS in a string\n" if $sym == 256;
		$out .= chr $sym;
		($code, $len) = (0, 0);
	}
	# padding: fewer than 8 bits, all ones (a prefix of EOS)
	die "HPACK: bad Huffman padding\n"
		if $len >= 8 || $code != (1 << $len) - 1;
	return $out;
}

1;
