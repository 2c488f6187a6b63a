package config

// Other packages' definition files (published datasets, environment
// profiles) get the same strict decoding and file:line errors as labs and
// scenarios through these two exports.

// Doc is a decoded YAML file that can say on which line a key sits.
type Doc struct{ d doc }

// Line returns the line of the value at a key path (sequence indices as
// decimal strings), or of the deepest key found.
func (d Doc) Line(keys ...string) int { return d.d.line(keys...) }

// DecodeStrict decodes data into out with unknown fields rejected; errors
// are Errors naming file and line.
func DecodeStrict(file string, data []byte, out any) (Doc, error) {
	d, err := decodeStrict(file, data, out)
	return Doc{d}, err
}
