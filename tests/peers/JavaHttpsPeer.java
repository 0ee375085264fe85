// A third-party mTLS peer for the integration tests: the JDK's own HttpsServer
// (com.sun.net.httpserver), which refuses a client certificate silently — after the
// handshake it just closes, without an alert (SPEC §4).
//
// The tests compile it once (javac -d DIR) and start it from the classes; by hand the
// single-file source launcher works too:
//   java tests/peers/JavaHttpsPeer.java CHAIN.pem KEY.pem CA.pem TLSv1.3|TLSv1.2 need|want
// Prints "LISTENING <port>" once bound on 127.0.0.1 (the readiness signal), then
// answers every request with 200 "ok\n" until killed. KEY.pem is PKCS#8 (EC or RSA).

import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsParameters;
import com.sun.net.httpserver.HttpsServer;
import java.io.ByteArrayInputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManagerFactory;

public class JavaHttpsPeer {
    public static void main(String[] args) throws Exception {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        Certificate[] chain = cf.generateCertificates(
                new ByteArrayInputStream(Files.readAllBytes(Path.of(args[0])))).toArray(new Certificate[0]);
        PrivateKey key = readKey(Path.of(args[1]));
        char[] pw = "changeit".toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        ks.setKeyEntry("server", key, pw, chain);
        KeyStore ts = KeyStore.getInstance("PKCS12");
        ts.load(null, null);
        int i = 0;
        for (Certificate ca : cf.generateCertificates(
                new ByteArrayInputStream(Files.readAllBytes(Path.of(args[2]))))) {
            ts.setCertificateEntry("ca" + i++, ca);
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, pw);
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ts);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        String protocol = args[3];
        boolean need = args[4].equals("need");

        HttpsServer server = HttpsServer.create(new InetSocketAddress("127.0.0.1", 0), 16);
        server.setHttpsConfigurator(new HttpsConfigurator(ctx) {
            @Override
            public void configure(HttpsParameters params) {
                SSLParameters p = ctx.getDefaultSSLParameters();
                p.setProtocols(new String[] {protocol});
                if (need) {
                    p.setNeedClientAuth(true);
                } else {
                    p.setWantClientAuth(true);
                }
                params.setSSLParameters(p);
            }
        });
        server.createContext("/", exchange -> {
            byte[] body = "ok\n".getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        server.start();
        System.out.println("LISTENING " + server.getAddress().getPort());
        System.out.flush();
    }

    private static PrivateKey readKey(Path file) throws Exception {
        String pem = Files.readString(file);
        String b64 = pem.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
        PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(Base64.getDecoder().decode(b64));
        for (String alg : new String[] {"EC", "RSA", "Ed25519"}) {
            try {
                return KeyFactory.getInstance(alg).generatePrivate(spec);
            } catch (Exception e) {
                // try the next algorithm
            }
        }
        throw new IllegalArgumentException("unsupported PKCS#8 key in " + file);
    }
}
