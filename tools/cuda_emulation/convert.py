"""convert.py SOURCE.cu OUT.cpp: a .cu file as plain C++ for the CPU emulation (emulator.cpp).

Each launch `kernel<<<grid, block, shared, stream>>>(args);` becomes rwkv_emu_launch with the
arguments evaluated at the launch (CUDA copies them then, which matters for graph capture) and
the kernel called as a function; __shared__ becomes static (the emulation runs one block at a
time, so its threads share it)."""
import re
import sys

LAUNCH = re.compile(r'(\b[A-Za-z_]\w*(?:<[^<>;]*>)?)<<<(.+?)>>>\((.*)\);')


def convert(source: str) -> str:
    source = LAUNCH.sub(lambda m: (f'rwkv_emu_launch({m.group(2)}, [emu_args = std::make_tuple({m.group(3)})]() '
                                   f'{{ std::apply({m.group(1)}, emu_args); }});'), source)
    source = source.replace('extern __shared__ float shared[];', 'float * shared = (float *) rwkv_emu_dynamic_shared();')
    source = re.sub(r'\b__shared__\b', 'static', source)
    return '#include <tuple>\n' + source


if __name__ == '__main__':
    with open(sys.argv[1]) as f:
        converted = convert(f.read())
    with open(sys.argv[2], 'w') as f:
        f.write(converted)
