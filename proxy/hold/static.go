package hold

import (
	"debug/elf"
	"fmt"
)

// Static reports whether the ELF executable at path is statically linked:
// it has no PT_INTERP program header, so the kernel starts it without a
// dynamic loader and it runs in any image. A file that is not ELF is an
// error.
func Static(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, fmt.Errorf("check %s is static: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}
